"""Batch scoring: a table of any size scored with a model exactly as the service answers it.

ScoreFlow wires these, one call per step: `resolve_model` (the champion, or a run whose gate
passed), `prepare_output` (the output free unless overwritten, the run's staging prefixes),
`describe_input` (the files, their rows, the model's columns in each), `plan_shards` (row
ranges of the files, `[score] shard_rows` per shard), `score_shard` (only the model's columns
read; the service's prediction path on one thread, as each service worker; one Parquet part
staged) and `publish_scores` (the counts checked, the output published whole, the batch
logged for the monitor).

Output: a Parquet dataset (`part-<shard>.parquet`, `_manifest.json`), one row per scored input
row, in input order: `row` (its position in the input, the files in order, from 0), the id
column (when the model has one and the input holds it), `prediction` and, for classifiers,
`proba_<class>` per class; with the prediction log on, also `request_id` and `request_row`,
the keys delayed labels join on. Each part's Parquet metadata (`flowship`) and the manifest
name the model run, its version, its verdict and the scoring run.

Rows the service would refuse (a text in a numeric column, a number that is not finite, a
category that is neither text nor a number or longer than `[serving] max_string_length`, a
text feature that is not text or longer than `[serving] max_text_length`) are not scored:
each goes to `<output>/_rejects/` with its row, id and reason. When they are more than
`[score] max_reject_share` of the input, the run fails and publishes nothing. Booleans in a
numeric column are taken as 1 and 0, as training takes them.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowship.config import ScoreSettings, ServingSettings
from flowship.errors import DataValidationError, RegistryError, ScoreError
from flowship.outputs import MANIFEST, Store, staging_prefix, store_for, write_manifest
from flowship.predict import (
    FastPredictor,
    PredictionLog,
    Predictions,
    category_codes,
    predict_frame,
    probe_rows,
)
from flowship.schema import Schema, category_text
from flowship.sources import TableFile, describe_file, read_rows, source_files

CHUNK_ROWS = 65_536  # rows per model call: the feature matrix of a call stays ~10-100 MB
BLOCK_ROWS = 16  # a model call's rows are a multiple of this (see `_outputs`)
SCORE_SAMPLE = 2_000  # predictions per shard kept for the card's distribution
EXAMPLES = 5  # refused rows quoted per shard
METADATA_KEY = b"flowship"
REJECTS = "_rejects"


@dataclass(frozen=True)
class ScoringModel:
    """The model a run scores with: its TrainFlow run, the version its predictions carry (the
    run: a batch reads the model from the run's artifacts, not from the BentoML store), its
    gate verdict and its contract."""

    run: str
    model_version: str
    verdict: str
    schema: Schema


def resolve_model(model: str, project: str, branch: str) -> ScoringModel:
    """The run `model` names (`TrainFlow/<id>`), else the branch's champion; either must have
    passed its gate (or been promoted by an audited override).

    Raises:
        RegistryError: no champion, no such run, a run without a finished gate, or one whose
            gate did not pass.
    """
    from flowship.registry import find_champion, released_artifacts
    from flowship.runs import get_run

    run = get_run(model) if model else find_champion(project, branch)
    if run is None:
        raise RegistryError(
            f"no champion in project {project!r}, branch {branch!r}: run `make train`, or "
            "score with --model TrainFlow/<id> (a run whose gate passed)"
        )
    data = released_artifacts(
        run,
        "score with the champion (no --model) or a run whose gate passed (`make history` "
        "lists them)",
    )
    verdict = data.verdict
    return ScoringModel(run.pathspec, run.pathspec, verdict.id, data.schema)


def load_model(run: str) -> Any:
    """The fitted pipeline of a TrainFlow run, read from its artifacts."""
    from flowship.registry import ChampionArtifacts

    return ChampionArtifacts(run).model


@dataclass(frozen=True)
class Target:
    """Where a run writes: the output, the prefixes it stages in, and the prediction log."""

    output: str
    staging: str  # parts and rejects, published whole as the output
    log_staging: str  # prediction-log files, moved into `log_dir` once the output is published
    log_dir: str | None  # None: the batch is not logged
    request_rows: int  # rows per logged request
    overwrite: bool


def prepare_output(
    output: str,
    run_id: str,
    overwrite: bool,
    log_dir: str | None = None,
    request_rows: int = 1000,
    now: datetime | None = None,
) -> Target:
    """The run's output (`{date}` and `{run_id}` filled in; a local path made absolute),
    refused when something is there already, unless `overwrite`.

    Raises:
        ScoreError: no output given, or it exists and `overwrite` is false.
    """
    if not output:
        raise ScoreError(
            "no output: give --output (a folder or an s3:// prefix), or set [score] output"
        )
    day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    resolved = output.replace("{date}", day).replace("{run_id}", run_id)
    if not resolved.startswith("s3://"):
        resolved = str(Path(resolved).expanduser().resolve())
    if store_for(resolved).exists(resolved) and not overwrite:
        raise ScoreError(
            f"{resolved} exists: pass --overwrite True to replace it once the new output is "
            "complete, or choose another --output"
        )
    logs = None if log_dir is None else str(Path(log_dir).expanduser().resolve())
    return Target(
        resolved,
        staging_prefix(resolved, run_id),
        staging_prefix(resolved, run_id, "log"),
        logs,
        request_rows,
        overwrite,
    )


@dataclass(frozen=True)
class ScoringInput:
    """The files to score, in order, and the id column they all hold (if the model has one)."""

    source: str
    files: list[TableFile]
    id_column: str | None

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def describe_input(source: str, schema: Schema) -> ScoringInput:
    """The input's files with their rows (Parquet footers, counted CSV records), each checked
    to hold every feature the model takes.

    Raises:
        DataValidationError: no input, a sample source, a file that is missing, unreadable or
            lacks features (named), or no rows at all.
    """
    if not source:
        raise DataValidationError(
            "no input: give --input (a CSV or Parquet file, a glob, s3://...), or set [score] input"
        )
    if source.startswith("sample:"):
        raise DataValidationError(
            f"{source!r} is a generated table, not a file: write it with `python -m flowship "
            "sample --out data/table.parquet` and score that file"
        )
    files = [describe_file(url) for url in source_files(source, "--input")]
    for file in files:
        missing = [c for c in schema.features if c not in file.columns]
        if missing:
            raise DataValidationError(
                f"{file.url} lacks column(s) {missing} that the model needs (its features: "
                f"{schema.features}; the file has {file.columns})"
            )
    if sum(f.rows for f in files) == 0:
        raise DataValidationError(f"the input {source} has no rows: nothing to score")
    ids = schema.id_column
    every = ids is not None and all(ids in f.columns for f in files)
    return ScoringInput(source, files, ids if every else None)


@dataclass(frozen=True)
class Piece:
    """Rows `start` to `stop` (excluded) of one file; `first_row` is the input position of
    `start`."""

    url: str
    start: int
    stop: int
    first_row: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Shard:
    """One parallel task's rows: consecutive pieces of the input."""

    index: int
    pieces: tuple[Piece, ...]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pieces)


def plan_shards(source: ScoringInput, shard_rows: int) -> list[Shard]:
    """Cut the input, in order, into shards of `shard_rows` rows (the last one smaller): a
    large file is split by rows, small files share a shard."""
    shards: list[Shard] = []
    pieces: list[Piece] = []
    size = position = 0
    for file in source.files:
        start = 0
        while start < file.rows:
            take = min(file.rows - start, shard_rows - size)
            pieces.append(Piece(file.url, start, start + take, position))
            start, position, size = start + take, position + take, size + take
            if size == shard_rows:
                shards.append(Shard(len(shards), tuple(pieces)))
                pieces, size = [], 0
    if pieces:
        shards.append(Shard(len(shards), tuple(pieces)))
    return shards


@dataclass(frozen=True)
class Checked:
    """An input frame checked as the service checks a request, row by row."""

    frame: pd.DataFrame  # the rows the service would take, numbers as float64
    valid: np.ndarray  # per input row: taken
    reasons: np.ndarray  # per input row: "" or "<column>: <why>"
    missing: int  # taken rows with a missing feature value
    unknown: int  # taken rows with a category never seen in training


def check_rows(frame: pd.DataFrame, schema: Schema, serving: ServingSettings) -> Checked:
    """Which rows the service would take, with the first reason each refused row has, and the
    taken rows typed as the service types a request (numbers as float64, categories and text
    as given, missing as null)."""
    n = len(frame)
    why = np.full(n, "", dtype=object)
    missing = np.zeros(n, dtype=bool)
    unknown = np.zeros(n, dtype=bool)

    def refuse(column: str, rows: np.ndarray, reasons: Any) -> None:
        for i, reason in zip(rows, reasons, strict=True):
            if not why[i]:  # the first reason a row has
                why[i] = f"{column}: {reason}"

    typed: dict[str, Any] = {}
    for column in schema.numeric:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
            numbers = values.to_numpy(dtype=float, na_value=np.nan)
        else:
            parsed = pd.to_numeric(values, errors="coerce")
            numbers = parsed.to_numpy(dtype=float, na_value=np.nan)
            bad = np.flatnonzero(np.isnan(numbers) & values.notna().to_numpy())
            refuse(column, bad, [f"{_shown(values.iloc[i])} is not a number" for i in bad])
        bad = np.flatnonzero(np.isinf(numbers))
        refuse(column, bad, [f"{numbers[i]} is not a finite number" for i in bad])
        missing |= np.isnan(numbers)
        typed[column] = numbers
    for column in schema.categorical:
        values = frame[column]
        if values.dtype == object:  # lists, dicts (nested Parquet types) cannot be counted
            odd = np.fromiter((not _scalar(v) for v in values), dtype=bool, count=n)
            bad = np.flatnonzero(odd)
            refuse(
                column, bad, [f"{_shown(values.iloc[i])} is neither text nor a number" for i in bad]
            )
            values = values.where(~odd, None)
        codes, distinct = category_codes(values)
        limit = serving.max_string_length
        problems = np.asarray([_category_problem(v, limit) for v in distinct] + [""], dtype=object)
        bad = np.flatnonzero(problems[codes] != "")
        refuse(column, bad, problems[codes[bad]])
        known = set(schema.categories.get(column, []))
        new = np.asarray([category_text(v) not in known for v in distinct] + [False])
        unknown |= new[codes]
        missing |= codes < 0
        typed[column] = values
    for column in schema.text:
        values = frame[column]
        limit = serving.max_text_length
        problems = np.asarray([_text_problem(v, limit) for v in values], dtype=object)
        bad = np.flatnonzero(problems != "")
        refuse(column, bad, problems[bad])
        missing |= values.isna().to_numpy()
        typed[column] = values
    valid = why == ""
    taken = pd.DataFrame(typed, columns=schema.features)[valid].reset_index(drop=True)
    return Checked(taken, valid, why, int((missing & valid).sum()), int((unknown & valid).sum()))


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scalar(value: Any) -> bool:
    return (
        value is None or value is pd.NA or isinstance(value, str | bool | int | float | np.generic)
    )


def _category_problem(value: Any, max_length: int) -> str:
    """Why the service would refuse this category value ("" when it takes it)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        if len(value) > max_length:
            return f"{len(value)} characters, more than [serving] max_string_length = {max_length}"
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, bool | int | float):
        return ""
    return f"{_shown(value)} is neither text nor a number"  # a date, bytes, ...


def _text_problem(value: Any, max_length: int) -> str:
    """Why the service would refuse this text-feature value ("" when it takes it)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if not isinstance(value, str):
        return f"{_shown(value)} is not text"
    if len(value) > max_length:
        return f"{len(value)} characters, more than [serving] max_text_length = {max_length}"
    return ""


@dataclass(frozen=True)
class ShardResult:
    """What one shard did: its counts, a sample of its predictions, why rows were refused."""

    index: int
    rows: int
    scored: int
    rejected: int
    missing: int
    unknown: int
    labels: dict[str, int]  # predicted class → rows (classifiers)
    scores: list[float]  # a sample of the watched score (P(positive), P(class) or the value)
    rejected_by_column: dict[str, int]
    examples: list[str]  # "row 12: monthly_charges: 'abc' is not a number"
    started: float  # UNIX time
    seconds: float
    fast_path: bool  # the service's NumPy fast path (else the pipeline, as the service too)


def score_shard(
    shard: Shard,
    model: ScoringModel,
    source: ScoringInput,
    target: Target,
    serving: ServingSettings,
    settings: ScoreSettings,
    scoring_run: str,
) -> ShardResult:
    """Score one shard and stage its part (and its refused rows, and its prediction log).

    The model's columns are read for the shard's rows only; the rows the service would take
    are predicted with the service's own path (`FastPredictor` when the service builds one
    for this model, else the pipeline) on one thread, as each service worker computes.

    Raises:
        DataValidationError: a file cannot be read, or changed since the run counted it.
        ScoreError: this shard alone refuses more rows than `[score] max_reject_share` of the
            whole input allows (the run fails fast; nothing is published).
    """
    from threadpoolctl import threadpool_limits

    started, clock = time.time(), time.perf_counter()
    schema = model.schema
    columns = [c for c in [source.id_column, *schema.features] if c]
    frame = pd.concat(
        [read_rows(p.url, columns, p.start, p.stop, schema.categorical) for p in shard.pieces],
        ignore_index=True,
    )
    if len(frame) != shard.rows:
        raise DataValidationError(
            f"shard {shard.index} read {len(frame)} rows where the run counted {shard.rows}: "
            "the input changed during the run; score it again"
        )
    rows = np.concatenate([np.arange(p.first_row, p.first_row + p.rows) for p in shard.pieces])
    checked = check_rows(frame, schema, serving)
    rejected = int((~checked.valid).sum())
    if rejected > settings.max_reject_share * source.rows:
        raise ScoreError(_too_many(rejected, source.rows, settings, _examples(rows, checked)))
    pipeline = load_model(model.run)  # first: the limit applies to the libraries loaded
    with threadpool_limits(limits=1):  # one thread, as each service worker computes
        fast = FastPredictor.build(pipeline, schema, probe_rows(schema))
        outputs = _outputs(pipeline, schema, checked.frame, fast)
    table = schema.kind.prediction_table(outputs, schema)
    if table.empty and schema.kind.classifies:  # typed as the other parts' (one dataset)
        table["prediction"] = table["prediction"].astype(pd.Series(schema.classes).dtype)
    table.insert(0, "row", rows[checked.valid])
    ids = frame[source.id_column] if source.id_column else None
    if ids is not None:
        table.insert(1, str(source.id_column), ids[checked.valid].reset_index(drop=True))
    store = store_for(target.output)
    meta = {
        "model_run": model.run,
        "model_version": model.model_version,
        "verdict": model.verdict,
        "scoring_run": scoring_run,
        "input": source.source,
    }
    if target.log_dir is not None:
        logged = checked.frame
        if ids is not None:
            logged = logged.assign(**{str(source.id_column): ids[checked.valid].to_numpy()})
        request_ids, request_rows = _log_batch(
            store, target, model, logged, outputs, serving, shard.index, scoring_run
        )
        table["request_id"], table["request_row"] = request_ids, request_rows
    _put_parquet(store, table, f"{target.staging}/{part_name(shard.index)}", meta)
    if rejected:
        refused = {"row": rows[~checked.valid]}
        if ids is not None:
            refused[str(source.id_column)] = ids[~checked.valid].to_numpy()
        refused["reason"] = checked.reasons[~checked.valid]
        url = f"{target.staging}/{REJECTS}/{part_name(shard.index)}"
        _put_parquet(store, pd.DataFrame(refused), url, meta)
    scores = schema.kind.watched_score(table, schema).to_numpy(dtype=float)
    labels = table["prediction"].value_counts() if schema.kind.classifies else None
    by_column = Counter(str(r).split(":", 1)[0] for r in checked.reasons[~checked.valid])
    return ShardResult(
        index=shard.index,
        rows=shard.rows,
        scored=len(table),
        rejected=rejected,
        missing=checked.missing,
        unknown=checked.unknown,
        labels={} if labels is None else {str(k): int(v) for k, v in labels.items()},
        scores=scores[:: max(1, len(scores) // SCORE_SAMPLE)].tolist(),
        rejected_by_column=dict(by_column),
        examples=_examples(rows, checked),
        started=started,
        seconds=time.perf_counter() - clock,
        fast_path=fast is not None,
    )


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def _outputs(
    model: Any, schema: Schema, frame: pd.DataFrame, fast: FastPredictor | None
) -> np.ndarray:
    """The model's outputs for the frame's rows, `CHUNK_ROWS` rows a call.

    Each call's rows are padded (with copies of its first row, dropped after) to a multiple
    of `BLOCK_ROWS`: BLAS libraries (OpenBLAS here) compute the last rows of a matrix that do
    not fill a block of rows with other code, whose last bit can differ. Padded, every row is
    computed as a full block's row, so a row's outputs do not depend on the shard size or on
    its place in the shard, and equal the service's for rows that fill its batch's blocks."""
    if frame.empty:
        shape = (0, len(schema.classes)) if schema.kind.classifies else (0,)
        return np.empty(shape)
    parts = []
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        rows, pad = len(chunk), -len(chunk) % BLOCK_ROWS
        if pad:
            chunk = pd.concat([chunk, chunk.iloc[[0] * pad]], ignore_index=True)
        parts.append(predict_frame(model, schema, chunk, fast)[:rows])
    return np.concatenate(parts)


def _examples(rows: np.ndarray, checked: Checked) -> list[str]:
    refused = np.flatnonzero(~checked.valid)[:EXAMPLES]
    return [f"row {rows[i]}: {checked.reasons[i]}" for i in refused]


def _too_many(rejected: int, total: int, settings: ScoreSettings, examples: list[str]) -> str:
    share = rejected / total
    return (
        f"{rejected:,} of the input's {total:,} rows ({share:.2%}) cannot be scored, more than "
        f"[score] max_reject_share = {settings.max_reject_share:.2%}; e.g. "
        + "; ".join(examples)
        + ". Nothing was published: fix the input (or raise max_reject_share to write the "
        "refused rows to <output>/_rejects/ instead)"
    )


def _put_parquet(store: Store, frame: pd.DataFrame, url: str, metadata: dict[str, Any]) -> None:
    """Write a frame as one Parquet file at `url` with the run's metadata (`flowship` key)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    extra = {METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    with tempfile.TemporaryDirectory(prefix="flowship-part-") as folder:
        path = Path(folder) / "part.parquet"  # made with the user's umask, as the output
        pq.write_table(table, path)
        store.put(path, url)


def _log_batch(
    store: Store,
    target: Target,
    model: ScoringModel,
    frame: pd.DataFrame,
    outputs: np.ndarray,
    serving: ServingSettings,
    shard: int,
    scoring_run: str,
) -> tuple[list[str], np.ndarray]:
    """Log the shard's rows as the service logs requests (`[serving] max_rows` rows each),
    staged; returns each row's request id and position in its request."""
    schema = model.schema
    task = schema.kind
    classes = [str(c) for c in schema.classes]
    columns = [c for c in [schema.id_column, *schema.features] if c]
    records = _records(frame, columns)
    size = target.request_rows
    request_ids: list[str] = []
    run_id = scoring_run.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="flowship-log-") as folder:
        log = PredictionLog(folder, model.model_version, serving.log_rotate_mb, run=model.run)
        for chunk, start in enumerate(range(0, len(records), size)):
            request = f"score-{run_id}-{shard:05d}-{chunk:06d}"
            part = outputs[start : start + size]
            rows = records[start : start + size]
            probabilities = part.tolist() if task.classifies else [[] for _ in rows]
            answer = Predictions(task.predicted(part, schema), probabilities, classes)
            if not log.write(request, rows, answer, scoring_run=scoring_run):
                raise ScoreError(f"could not write the prediction log in {folder}")
            request_ids += [request] * len(rows)
        log.close()
        for path in sorted(Path(folder).glob("predictions-*.jsonl")):
            store.put(path, f"{target.log_staging}/{path.stem}-{shard:05d}.jsonl")
    return request_ids, np.arange(len(records)) % size


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as the service logs them: plain Python values, missing as None (an absent
    column, e.g. an id the input lacks, as None too)."""
    values = {}
    for column in columns:
        if column not in frame:
            values[column] = [None] * len(frame)
            continue
        series = frame[column]
        plain = series.astype(object).where(series.notna(), None).tolist()
        values[column] = [v.item() if isinstance(v, np.generic) else v for v in plain]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values.values(), strict=True)]


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run did, for its card, its last lines and the manifest."""

    source: str
    output: str
    model_run: str
    model_version: str
    verdict: str
    scoring_run: str
    task: str
    rows: int
    scored: int
    rejected: int
    shards: int
    missing: int
    unknown: int
    labels: dict[str, int]
    scores: list[float]
    rejected_by_column: dict[str, int]
    examples: list[str]
    seconds: float  # from the first shard's start to the output's publication
    shard_seconds: float  # the shards' own time, summed
    fast_path: bool
    log_files: int
    log_dir: str | None
    resumed_from: str | None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """What the run did, in a few lines."""
        out = [
            f"scored {self.scored:,} of {self.rows:,} rows in {self.shards} shard(s) with "
            f"{self.model_run}: {self.output}",
            f"{self.seconds:.1f} s, {self.rows_per_second:,.0f} rows/s"
            + (f" (resumed from run {self.resumed_from})" if self.resumed_from else ""),
        ]
        if self.rejected:
            out.append(
                f"{self.rejected:,} rows refused (written to {self.output}/{REJECTS}/): "
                + "; ".join(self.examples[:3])
            )
        if self.log_dir is not None:
            out.append(f"logged for the monitor: {self.log_files} file(s) in {self.log_dir}")
        return out


def publish_scores(
    source: ScoringInput,
    shards: list[Shard],
    results: list[ShardResult],
    model: ScoringModel,
    target: Target,
    settings: ScoreSettings,
    scoring_run: str,
    resumed_from: str | None = None,
) -> ScoreSummary:
    """Check that every planned row is accounted for once (shards, staged parts and their
    rows), then publish the output whole (manifest last) and move the batch's prediction log
    into `target.log_dir`.

    Raises:
        ScoreError: a shard is missing or twice, counts differ, a staged part is missing or
            holds other rows than its shard scored, or too many rows were refused; nothing is
            published then.
    """
    store = store_for(target.output)
    ordered = sorted(results, key=lambda r: r.index)
    if [r.index for r in ordered] != [s.index for s in shards]:
        raise ScoreError(
            f"the shards reported are {[r.index for r in ordered]}, the plan has "
            f"{len(shards)}: nothing was published"
        )
    for shard, result in zip(shards, ordered, strict=True):
        if result.rows != shard.rows or result.scored + result.rejected != result.rows:
            raise ScoreError(
                f"shard {shard.index} counts {result.scored} scored + {result.rejected} "
                f"refused of {result.rows} rows where the plan has {shard.rows}: nothing was "
                "published"
            )
    staged = set(store.names(target.staging)) - {MANIFEST}  # one from a failed publication
    parts = {part_name(r.index): r.scored for r in ordered}
    rejects = {f"{REJECTS}/{part_name(r.index)}" for r in ordered if r.rejected}
    if set(parts) - staged or staged - set(parts) - rejects:
        raise ScoreError(
            f"the staged files in {target.staging} are not the planned parts (missing: "
            f"{sorted(set(parts) - staged)}, unexpected: {sorted(staged - set(parts) - rejects)})"
            ": nothing was published"
        )
    for name, scored in parts.items():
        counted = describe_file(f"{target.staging}/{name}").rows
        if counted != scored:
            raise ScoreError(
                f"{target.staging}/{name} holds {counted} rows, its shard scored {scored}: "
                "nothing was published"
            )
    scored, rejected = sum(parts.values()), sum(r.rejected for r in ordered)
    if scored + rejected != source.rows:
        raise ScoreError(
            f"{scored} scored + {rejected} refused rows, the input has {source.rows}: "
            "nothing was published"
        )
    if rejected > settings.max_reject_share * source.rows:
        examples = [e for r in ordered for e in r.examples][:EXAMPLES]
        store.remove(target.staging)
        store.remove(target.log_staging)
        raise ScoreError(_too_many(rejected, source.rows, settings, examples))
    summary = _summary(source, ordered, model, target, scoring_run, resumed_from, store)
    write_manifest(store, target.staging, _manifest(summary, parts, sorted(rejects)))
    store.publish(target.staging, target.output, target.overwrite)
    if target.log_dir is not None:
        for name in store.names(target.log_staging):
            store.fetch(f"{target.log_staging}/{name}", Path(target.log_dir) / name)
        store.remove(target.log_staging)
    return summary


def _summary(
    source: ScoringInput,
    results: list[ShardResult],
    model: ScoringModel,
    target: Target,
    scoring_run: str,
    resumed_from: str | None,
    store: Store,
) -> ScoreSummary:
    labels: Counter[str] = Counter()
    by_column: Counter[str] = Counter()
    for r in results:
        labels.update(r.labels)
        by_column.update(r.rejected_by_column)
    logs = len(store.names(target.log_staging)) if target.log_dir is not None else 0
    return ScoreSummary(
        source=source.source,
        output=target.output,
        model_run=model.run,
        model_version=model.model_version,
        verdict=model.verdict,
        scoring_run=scoring_run,
        task=model.schema.task,
        rows=source.rows,
        scored=sum(r.scored for r in results),
        rejected=sum(r.rejected for r in results),
        shards=len(results),
        missing=sum(r.missing for r in results),
        unknown=sum(r.unknown for r in results),
        labels=dict(labels),
        scores=[s for r in results for s in r.scores],
        rejected_by_column=dict(by_column),
        examples=[e for r in results for e in r.examples][:EXAMPLES],
        seconds=time.time() - min(r.started for r in results),
        shard_seconds=sum(r.seconds for r in results),
        fast_path=all(r.fast_path for r in results),
        log_files=logs,
        log_dir=target.log_dir,
        resumed_from=resumed_from,
    )


def _manifest(summary: ScoreSummary, parts: dict[str, int], rejects: list[str]) -> dict[str, Any]:
    return {
        "complete": True,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": summary.source,
        "rows": summary.rows,
        "scored": summary.scored,
        "rejected": summary.rejected,
        "parts": parts,
        "rejects": rejects,
        "model_run": summary.model_run,
        "model_version": summary.model_version,
        "verdict": summary.verdict,
        "scoring_run": summary.scoring_run,
        "resumed_from": summary.resumed_from,
    }
