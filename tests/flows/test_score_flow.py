"""ScoreFlow end to end with one small champion: a glob of files and a large file split by
rows scored in input order, the card and the prediction log the monitor reads, refused rows,
a shard that fails once and `resume`, input and output in S3, and bad inputs refused with
one clear line. The tests share one datastore, in file order."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowship.sample_data import generate_churn
from tests.helpers import REPO, TRAIN_FLOW, card_text, run_flow, small_config, write_config

pytestmark = pytest.mark.slow
SCORE_FLOW = REPO / "flows" / "score_flow.py"
ONE = {"candidates": [{"name": "logreg", "estimator": "logistic_regression"}]}


def _config(root: Path, **score: Any) -> dict[str, Any]:
    return small_config(
        training=ONE,
        score={"shard_rows": 400, **score},
        serving={"prediction_log_dir": str(root / "predictions"), "max_rows": 100},
        monitor={"feedback_dir": str(root / "feedback"), "min_rows": 100},
    )


@pytest.fixture(scope="module")
def champion(datastore: Path) -> Any:
    """The module's champion; its config is also the datastore's config/project.toml (the
    default config, which Metaflow's `resume` needs to find, and then ignores)."""
    (datastore / "config").mkdir()
    write_config(datastore / "config" / "project.toml", _config(datastore))
    result = run_flow(datastore, TRAIN_FLOW, _config(datastore))
    assert result.status == "successful", result.stdout + result.stderr
    assert result.run.data.verdict.decision == "promote"
    return result.run


def _table(rows: int, seed: int) -> pd.DataFrame:
    """Churn rows with missing values (as generated) and a few unseen categories."""
    frame = generate_churn(rows, seed=seed).drop(columns=["churned"])
    frame.loc[frame.index[::97], "contract"] = "never-seen"
    return frame


def _expected(champion: Any, frame: pd.DataFrame) -> np.ndarray:
    data = champion.data
    return data.model.predict_proba(frame[data.schema.features])


def _score(datastore: Path, **options: Any) -> Any:
    return run_flow(datastore, SCORE_FLOW, _config(datastore), **options)


def test_a_glob_scored_in_order_with_its_card_and_log(champion: Any, datastore: Path) -> None:
    """Three files, the first larger than a shard (split by rows), the others packed: one
    output row per input row, in order, with the ids and the model's probabilities; the card
    counts them; the batch is in the prediction log, which the monitor reads as traffic."""
    from flowship.monitoring import load_window, prepare_window
    from flowship.runs import write_card

    table = _table(1200, seed=21)
    (datastore / "batch").mkdir()
    for name, (start, stop) in {"a": (0, 700), "b": (700, 850), "c": (850, 1200)}.items():
        table.iloc[start:stop].to_parquet(datastore / "batch" / f"{name}.parquet", index=False)
    result = _score(
        datastore,
        input=str(datastore / "batch" / "*.parquet"),
        output=str(datastore / "scores"),
        log_predictions=True,
    )
    assert result.status == "successful", result.stdout + result.stderr
    out = pd.read_parquet(datastore / "scores")
    assert out["row"].tolist() == list(range(1200))
    assert out["customer_id"].tolist() == table["customer_id"].tolist()
    got = out[["proba_0", "proba_1"]].to_numpy()
    np.testing.assert_allclose(got, _expected(champion, table), rtol=1e-12, atol=1e-15)
    assert out["prediction"].tolist() == got.argmax(axis=1).tolist()
    summary = result.run.data.summary
    assert (summary.rows, summary.scored, summary.shards) == (1200, 1200, 3)
    assert summary.model_run == champion.pathspec and summary.fast_path
    assert summary.unknown == len(table.index[::97])
    manifest = json.loads((datastore / "scores" / "_manifest.json").read_text())
    assert manifest["scoring_run"] == result.run.pathspec
    assert manifest["parts"] == {f"part-0000{i}.parquet": 400 for i in range(3)}
    card = card_text(write_card(result.run, "join", datastore / "card.html").read_text())
    assert "1,200" in card and "shard" in card and "rows/s" in card

    window = load_window(
        champion.data.settings.monitor, champion.data.schema, champion.pathspec,
        datastore / "predictions",
    )  # fmt: skip
    assert len(window.frame) == 1200 and set(window.frame["run"]) == {champion.pathspec}
    current = prepare_window(window, champion.data.schema, champion.data.model)
    current[["request_id", "row"]] = window.frame[["request_id", "row"]]
    logged = out.merge(
        current, left_on=["request_id", "request_row"], right_on=["request_id", "row"]
    )
    assert len(logged) == 1200  # each scored row logged once, under the keys of its output row
    np.testing.assert_array_equal(logged["proba_1_x"], logged["proba_1_y"])


def test_one_csv_split_by_rows_with_refused_rows(champion: Any, datastore: Path) -> None:
    """One CSV file cut into shards by rows; rows the service would refuse go to _rejects/
    with their reason, the others are scored in order."""
    table = _table(1000, seed=22).astype({"age": object})
    table.loc[[5, 640], "age"] = "unknown"
    table.to_csv(datastore / "one.csv", index=False)
    result = _score(datastore, input=str(datastore / "one.csv"), output=str(datastore / "csv"))
    assert result.status == "successful", result.stdout + result.stderr
    assert result.run.data.summary.shards == 3
    out = pd.read_parquet(datastore / "csv")
    assert out["row"].tolist() == [i for i in range(1000) if i not in (5, 640)]
    rejects = pd.read_parquet(datastore / "csv" / "_rejects")
    assert rejects["row"].tolist() == [5, 640]
    assert set(rejects["reason"]) == {"age: 'unknown' is not a number"}
    assert "2 rows refused" in result.stdout


def _corrupt(path: Path, column: str) -> bytes:
    """Overwrite the start of one column's pages: the footer (row counts) still reads, the
    column's values do not. Returns the original bytes."""
    import pyarrow.parquet as pq

    original = path.read_bytes()
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns)
                 if meta.column(i).path_in_schema == column)  # fmt: skip
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(original)
    data[start : start + 32] = b"\xff" * 32
    path.write_bytes(bytes(data))
    return original


def test_a_failed_shard_resumes_alone(champion: Any, datastore: Path) -> None:
    """A file that cannot be read fails its shard: nothing is published, the finished shards'
    parts stay staged. Fixed and resumed, the finished shard is not scored again, the others
    run: every row once. (One shard at a time, so which shards finished is not a race:
    Metaflow stops the running tasks when one fails.)"""
    from metaflow import Runner

    table = _table(900, seed=23)
    (datastore / "resume").mkdir()
    for i, (start, stop) in enumerate([(0, 400), (400, 800), (800, 900)]):
        table.iloc[start:stop].to_parquet(datastore / "resume" / f"{i}.parquet", index=False)
    original = _corrupt(datastore / "resume" / "1.parquet", "monthly_charges")
    cfg = write_config(datastore / "resume.toml", _config(datastore))
    env = {"METAFLOW_DATASTORE_SYSROOT_LOCAL": str(datastore), "USERNAME": os.environ["USERNAME"]}
    options = {"input": str(datastore / "resume" / "*.parquet"), "output": str(datastore / "r")}
    runner = Runner(str(SCORE_FLOW), show_output=False, env=env, cwd=str(datastore),
                    config=[("config", str(cfg))])  # fmt: skip
    with runner.run(max_workers=1, **options) as failed:
        assert failed.status == "failed"
        assert "could not read" in failed.stdout and "1.parquet" in failed.stdout
        failed_id = failed.run.id
    assert not (datastore / "r").exists()
    staging = datastore / f".r.staging-{failed_id}"
    first = {p.name: p.stat().st_mtime_ns for p in staging.iterdir()}
    assert sorted(first) == ["part-00000.parquet"]

    (datastore / "resume" / "1.parquet").write_bytes(original)
    runner = Runner(str(SCORE_FLOW), show_output=False, env=env, cwd=str(datastore))
    with runner.resume(origin_run_id=failed_id) as resumed:
        assert resumed.status == "successful", resumed.stdout + resumed.stderr
        assert "Cloning previously run task" in resumed.stdout
        assert resumed.run.data.summary.resumed_from == failed_id
    out = pd.read_parquet(datastore / "r")
    assert out["row"].tolist() == list(range(900))  # every row once, in order
    parts = {p.name: p.stat().st_mtime_ns for p in (datastore / "r").glob("part-*")}
    assert parts["part-00000.parquet"] == first["part-00000.parquet"]  # not scored again
    assert sorted(parts) == [f"part-0000{i}.parquet" for i in range(3)]
    assert not staging.exists()


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    from flowship.scale import local_s3

    with local_s3() as env:
        yield env


def test_input_and_output_in_s3(champion: Any, datastore: Path, s3: dict[str, str]) -> None:
    """A glob of objects read through Metaflow's S3 client (a large one by byte ranges), the
    output published under an s3:// prefix with its manifest, nothing left staged."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3["METAFLOW_S3_ENDPOINT_URL"],
        aws_access_key_id=s3["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3["AWS_SECRET_ACCESS_KEY"],
        region_name=s3["AWS_DEFAULT_REGION"],
    )
    table = _table(1000, seed=24)
    for name, (start, stop) in {"x": (0, 900), "y": (900, 1000)}.items():
        buffer = io.BytesIO()
        table.iloc[start:stop].to_parquet(buffer, index=False, row_group_size=256)
        client.put_object(Bucket="flowship", Key=f"in/{name}.parquet", Body=buffer.getvalue())
    env = {k: v for k, v in s3.items() if k.startswith(("AWS_", "METAFLOW_S3_"))}
    env |= {"METAFLOW_DATASTORE_SYSROOT_LOCAL": str(datastore), "USERNAME": os.environ["USERNAME"]}
    cfg = write_config(datastore / "s3.toml", _config(datastore))
    done = subprocess.run(
        [sys.executable, str(SCORE_FLOW), "--no-pylint", "--config", "config", str(cfg), "run",
         "--input", "s3://flowship/in/*.parquet", "--output", "s3://flowship/out/today"],
        cwd=datastore, env={**os.environ, **env}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="flowship")["Contents"]]
    assert sorted(k for k in keys if not k.startswith("in/")) == [
        "out/today/_manifest.json", *[f"out/today/part-0000{i}.parquet" for i in range(3)]
    ]  # fmt: skip
    parts = [
        pd.read_parquet(io.BytesIO(client.get_object(Bucket="flowship", Key=k)["Body"].read()))
        for k in sorted(keys)
        if k.startswith("out/today/part-")
    ]
    out = pd.concat(parts, ignore_index=True)
    assert out["customer_id"].tolist() == table["customer_id"].tolist()
    np.testing.assert_allclose(
        out[["proba_0", "proba_1"]].to_numpy(), _expected(champion, table), rtol=1e-12
    )


def test_bad_inputs_are_one_clear_line(champion: Any, datastore: Path) -> None:
    """`make score` (python -m flowship score) refuses an output that exists and an input
    missing the model's columns, each with our message as the last line and status 2;
    nothing is written."""
    cfg = write_config(datastore / "bad.toml", _config(datastore))
    table = _table(50, seed=25)
    table.to_parquet(datastore / "ok.parquet", index=False)
    table.drop(columns=["tenure_months", "region"]).to_parquet(datastore / "lacking.parquet")
    env = {**os.environ, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(datastore)}

    def score(source: str, output: str) -> str:
        done = subprocess.run(
            [*[sys.executable, "-m", "flowship", "score", "--config", str(cfg)],
             "--input", str(datastore / source), "--output", str(datastore / output)],
            cwd=datastore, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stderr.strip().splitlines()[-1]

    assert score("ok.parquet", "scores") == (
        f"error: {datastore / 'scores'} exists: pass --overwrite True to replace it once the "
        "new output is complete, or choose another --output"
    )
    last = score("lacking.parquet", "new")
    assert last.startswith(
        f"error: {datastore / 'lacking.parquet'} lacks column(s) ['tenure_months', 'region']"
    ), last
    assert not (datastore / "new").exists() and not list(datastore.glob(".new.*"))
