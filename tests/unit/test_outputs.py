"""Datasets published whole: staged beside the output, renamed into place (local)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowship.errors import ScoreError
from flowship.outputs import MANIFEST, staging_prefix, store_for, write_manifest


def _staged(tmp_path: Path, run: str, *names: str) -> str:
    store = store_for(str(tmp_path))
    staging = staging_prefix(str(tmp_path / "out"), run)
    for name in names:
        local = tmp_path / f"tmp-{run}-{name.replace('/', '-')}"
        local.write_text(name)
        store.put(local, f"{staging}/{name}")
        assert not local.exists()  # the local file is consumed
    write_manifest(store, staging, {"run": run})
    return staging


def test_staging_prefix_sits_beside_the_output() -> None:
    """Hidden, beside the output: same file system or bucket, not in the output's listing."""
    assert staging_prefix("/data/scores/today", "12") == "/data/scores/.today.staging-12"
    assert staging_prefix("s3://b/scores/today/", "12", "log") == "s3://b/scores/.today.log-12"
    assert staging_prefix("today", "3") == ".today.staging-3"


def test_publish_renames_the_staged_dataset_into_place(tmp_path: Path) -> None:
    """The staged files become the output at once, manifest included; nothing stays staged."""
    store = store_for(str(tmp_path))
    staging = _staged(tmp_path, "1", "part-00000.parquet", "_rejects/part-00000.parquet")
    (Path(staging) / ".part-00001.parquet.1f2e.partial").write_text("a task killed mid-write")
    assert store.names(staging) == [MANIFEST, "_rejects/part-00000.parquet", "part-00000.parquet"]
    assert not store.exists(str(tmp_path / "out"))
    store.publish(staging, str(tmp_path / "out"), overwrite=False)
    assert store.names(str(tmp_path / "out")) == [
        MANIFEST, "_rejects/part-00000.parquet", "part-00000.parquet"
    ]  # fmt: skip
    assert json.loads((tmp_path / "out" / MANIFEST).read_text()) == {"run": "1"}
    assert not list((tmp_path / "out").glob(".*"))  # the half-written file is not published
    assert not Path(staging).exists()


def test_publish_keeps_an_existing_output_unless_overwriting(tmp_path: Path) -> None:
    """An output that exists is kept (and the staged files too, for another try); with
    `overwrite` it is replaced whole, its old files gone."""
    store = store_for(str(tmp_path))
    store.publish(_staged(tmp_path, "1", "part-00000.parquet", "part-00001.parquet"),
                  str(tmp_path / "out"), overwrite=False)  # fmt: skip
    staging = _staged(tmp_path, "2", "part-00000.parquet")
    with pytest.raises(ScoreError, match=r"out appeared while this run was scoring; its parts"):
        store.publish(staging, str(tmp_path / "out"), overwrite=False)
    assert store.names(staging) == [MANIFEST, "part-00000.parquet"]
    store.publish(staging, str(tmp_path / "out"), overwrite=True)
    assert store.names(str(tmp_path / "out")) == [MANIFEST, "part-00000.parquet"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_fetch_and_remove(tmp_path: Path) -> None:
    """Fetch copies a file out; remove deletes a prefix, and a missing one is fine."""
    store = store_for(str(tmp_path))
    staging = _staged(tmp_path, "1", "a.jsonl")
    store.fetch(f"{staging}/a.jsonl", tmp_path / "logs" / "a.jsonl")
    assert (tmp_path / "logs" / "a.jsonl").read_text() == "a.jsonl"
    store.remove(staging)
    store.remove(staging)
    assert store.names(staging) == []
