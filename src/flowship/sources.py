"""Reading tables: the embedded sample, CSV and Parquet files, globs of them, local or `s3://`."""

from __future__ import annotations

import fnmatch
import glob
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from flowship.config import SAMPLE_ROWS, SAMPLE_SEED
from flowship.errors import DataValidationError


def read_source(
    source: str, columns: list[str] | None = None, categorical: list[str] | None = None
) -> pd.DataFrame:
    """Read a table from `sample:churn?rows=..&seed=..&scenario=..`, a file or a glob, local
    or `s3://`.

    Args:
        source: the `[data] source` value; relative paths are relative to the working directory.
        columns: read only these columns (Parquet reads skip the others entirely).
        categorical: Parquet text columns to read straight into pandas categories (one string
            per distinct value instead of one per row).

    Raises:
        DataValidationError: the source is unknown, missing, empty or of an unsupported type.
    """
    if source.startswith("sample:"):
        frame = _read_sample(source)
        return frame[columns] if columns else frame
    if source.startswith("s3://"):
        return _read_s3(source, columns, categorical or [])
    paths = sorted(glob.glob(source)) if glob.has_magic(source) else [source]
    if not paths:
        raise DataValidationError(f"no file matches [data] source = {source!r}")
    frames = [_read_file(Path(p), columns, categorical or []) for p in paths]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _read_s3(source: str, columns: list[str] | None, categorical: list[str]) -> pd.DataFrame:
    """Objects at an `s3://bucket/key` URL or glob, read with Metaflow's S3 client (its
    endpoint and credentials: the datastore's own settings)."""
    from metaflow import S3
    from metaflow.exception import MetaflowException

    try:
        with S3() as s3:
            if glob.has_magic(source):
                magic = min(i for i, ch in enumerate(source) if ch in "*?[")
                listed = s3.list_recursive([source[:magic].rsplit("/", 1)[0] + "/"])
                urls = sorted(o.url for o in listed if fnmatch.fnmatchcase(o.url, source))
                if not urls:
                    raise DataValidationError(f"no object matches [data] source = {source!r}")
            else:
                urls = [source]
            objects = s3.get_many(urls)
            frames = [_read_file(Path(o.path), columns, categorical, name=o.url) for o in objects]
    except MetaflowException as exc:
        raise DataValidationError(
            f"could not read {source}: {exc} (check the URL, the credentials and, for an "
            "S3-compatible store, METAFLOW_S3_ENDPOINT_URL)"
        ) from None
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class SampleSource:
    """A parsed `sample:<name>?rows=…&seed=…&scenario=…` source."""

    name: str
    rows: int
    seed: int
    scenario: str


def parse_sample(source: str) -> SampleSource:
    """The embedded table, rows, seed and scenario a `sample:` source names.

    Raises:
        DataValidationError: an unknown table or option, or a non-integer number.
    """
    from flowship.sample_data import SAMPLES

    parts = urlsplit(source)
    name = parts.path
    if name not in SAMPLES:
        raise DataValidationError(
            f"unknown sample dataset {name!r} in [data] source; use "
            + " or ".join(f"'sample:{n}?rows={SAMPLE_ROWS}&seed={SAMPLE_SEED}'" for n in SAMPLES)
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"rows", "seed", "scenario"}
    if unknown:
        raise DataValidationError(
            f"unknown sample option(s) {sorted(unknown)} in [data] source; "
            "allowed: rows, seed, scenario"
        )
    try:
        rows = int(query.get("rows", SAMPLE_ROWS))
        seed = int(query.get("seed", SAMPLE_SEED))
    except ValueError:
        raise DataValidationError(
            f"rows and seed in [data] source must be integers, got {source!r}"
        ) from None
    return SampleSource(name, rows, seed, query.get("scenario", "baseline"))


def _read_sample(source: str) -> pd.DataFrame:
    from flowship.sample_data import SAMPLES

    sample = parse_sample(source)
    try:
        return SAMPLES[sample.name].generate(sample.rows, sample.seed, sample.scenario)
    except DataValidationError as exc:
        raise DataValidationError(f"[data] source {source!r}: {exc}") from None


def _read_file(
    path: Path, columns: list[str] | None, categorical: list[str], name: str | None = None
) -> pd.DataFrame:
    """Read one .csv/.parquet file; `name` (e.g. the S3 URL it came from) gives its type."""
    if not path.is_file():
        raise DataValidationError(
            f"data file {path} does not exist; fix [data] source (relative to {Path.cwd()})"
        )
    suffix = Path(name or path).suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow as pa  # only when reading Parquet: the service never does
            import pyarrow.parquet as pq

            schema = pq.read_schema(path)
            text = {
                f.name
                for f in schema
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            }
            table = pq.read_table(
                path,
                columns=_present(columns, schema.names),
                read_dictionary=[c for c in categorical if c in text],
            )
            # self_destruct frees each Arrow column as soon as pandas has it: no second copy
            frame = table.to_pandas(self_destruct=True, split_blocks=True)
            del table
            pa.default_memory_pool().release_unused()  # decompression buffers, back to the OS
            return frame
        if suffix in {".csv", ".gz"}:
            return _read_csv(path, columns)
    except (ValueError, OSError) as exc:
        raise DataValidationError(f"could not read {path}: {exc}") from None
    raise DataValidationError(
        f"unsupported file type {Path(name or path).name!r}; use .csv or .parquet files"
    )


_GZIP_MAGIC = b"\x1f\x8b"


def _read_csv(path: Path, columns: list[str] | None) -> pd.DataFrame:
    """A CSV file, gzip-compressed or not (by its first bytes, whatever its name), in UTF-8
    or, when it is not valid UTF-8, Latin-1 (Windows exports)."""
    with path.open("rb") as handle:
        compression = "gzip" if handle.read(2) == _GZIP_MAGIC else None
    for encoding in ("utf-8", "latin-1"):
        try:
            present = list(pd.read_csv(path, nrows=0, compression=compression, encoding=encoding))
            return pd.read_csv(
                path,
                usecols=_present(columns, present),
                compression=compression,
                encoding=encoding,
            )
        except UnicodeDecodeError:
            continue
    raise DataValidationError(f"could not read {path}: neither UTF-8 nor Latin-1 text")


def _present(columns: list[str] | None, present: list[str]) -> list[str] | None:
    """Only the wanted columns that exist: the missing ones are reported by `infer_schema`."""
    return None if columns is None else [c for c in columns if c in present]
