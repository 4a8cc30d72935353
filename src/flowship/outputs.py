"""Datasets that are whole or absent: files are staged under a prefix beside the output and the
output is published at once, a local folder or an `s3://` prefix.

Locally the staged folder is renamed to the output (one atomic rename on the same file
system). S3 has no rename: the staged objects are copied under the output (server-side) and
the manifest (`_manifest.json`) is written last, so a reader that finds the manifest finds
every part; the staged objects are deleted afterwards. Metaflow's S3 client reads and writes
(its endpoint and credentials: the datastore's own settings); listings, copies and deletes
use the boto3 client it configures.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Protocol

from flowship.errors import ScoreError

MANIFEST = "_manifest.json"
_PARTIAL = ".partial"  # a local file being written (renamed to its name when whole)


class Store(Protocol):
    """Where a dataset lives: files by URL, listed under a prefix."""

    def exists(self, url: str) -> bool:
        """Whether anything is at `url` (a file, or files under it)."""

    def put(self, local: Path, url: str) -> None:
        """Store a local file at `url` whole (readers never see half a file); the local file
        is consumed."""

    def names(self, prefix: str) -> list[str]:
        """The files under `prefix`, as paths relative to it, sorted."""

    def fetch(self, url: str, dest: Path) -> None:
        """Copy the file at `url` to the local path `dest`."""

    def remove(self, prefix: str) -> None:
        """Delete everything under `prefix` (nothing there is fine)."""

    def publish(self, staging: str, output: str, overwrite: bool) -> None:
        """Make the files staged under `staging` the dataset at `output`, manifest last."""


def store_for(url: str) -> Store:
    """The store of a URL: S3 for `s3://…`, else the local file system."""
    return _S3() if url.startswith("s3://") else _Local()


def staging_prefix(output: str, run_id: str, purpose: str = "staging") -> str:
    """A run's private prefix beside `output` (`<parent>/.<name>.<purpose>-<run id>`): on the
    same file system or bucket, out of the output's own listing."""
    parent, _, name = output.rstrip("/").rpartition("/")
    hidden = f".{name}.{purpose}-{run_id}"
    return f"{parent}/{hidden}" if parent else hidden


def write_manifest(store: Store, staging: str, manifest: dict[str, Any]) -> None:
    """Stage the manifest: it is published with the parts, last."""
    with tempfile.TemporaryDirectory(prefix="flowship-manifest-") as folder:
        path = Path(folder) / MANIFEST
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        store.put(path, f"{staging}/{MANIFEST}")


class _Local:
    def exists(self, url: str) -> bool:
        return os.path.lexists(url)

    def put(self, local: Path, url: str) -> None:
        target = Path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}{_PARTIAL}")
        shutil.move(local, partial)  # a copy when /tmp is another file system
        partial.replace(target)

    def names(self, prefix: str) -> list[str]:
        root = Path(prefix)
        if not root.is_dir():
            return []
        return sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(_PARTIAL)
        )

    def fetch(self, url: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(url, dest)

    def remove(self, prefix: str) -> None:
        shutil.rmtree(prefix, ignore_errors=True)

    def publish(self, staging: str, output: str, overwrite: bool) -> None:
        target = Path(output)
        replaced = None
        if os.path.lexists(target):
            if not overwrite:
                raise ScoreError(_exists(output, staging))
            replaced = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex}")
            target.rename(replaced)
        for leftover in Path(staging).rglob(f"*{_PARTIAL}"):  # of a task killed mid-write
            leftover.unlink()
        Path(staging).rename(target)
        if replaced is not None:
            if replaced.is_dir():
                shutil.rmtree(replaced)
            else:
                replaced.unlink()


class _S3:
    def _client(self) -> Any:
        from metaflow.plugins.datatools.s3.s3util import get_s3_client

        client, _ = get_s3_client()
        return client

    def _keys(self, prefix: str) -> list[str]:
        """The keys under `prefix/` (listed in this process: Metaflow's own listing starts a
        subprocess per call)."""
        bucket, key = _split(prefix.rstrip("/") + "/")
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def exists(self, url: str) -> bool:
        from metaflow import S3

        with S3() as s3:
            if s3.info(url, return_missing=True).exists:
                return True
        return bool(self._keys(url))

    def put(self, local: Path, url: str) -> None:
        from metaflow import S3

        with S3() as s3, local.open("rb") as handle:
            s3.put(url, handle)
        local.unlink()

    def names(self, prefix: str) -> list[str]:
        base = len(_split(prefix.rstrip("/") + "/")[1])
        return sorted(k[base:] for k in self._keys(prefix))

    def fetch(self, url: str, dest: Path) -> None:
        from metaflow import S3

        dest.parent.mkdir(parents=True, exist_ok=True)
        with S3() as s3:
            shutil.copyfile(s3.get(url).path, dest)

    def remove(self, prefix: str) -> None:
        keys = self._keys(prefix)
        if not keys:
            return
        bucket = _split(prefix)[0]
        client = self._client()
        for start in range(0, len(keys), 1000):  # delete_objects takes 1000 keys a call
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})

    def publish(self, staging: str, output: str, overwrite: bool) -> None:
        if self.exists(output):
            if not overwrite:
                raise ScoreError(_exists(output, staging))
            self.remove(output)
        names = [n for n in self.names(staging) if n != MANIFEST] + [MANIFEST]
        client = self._client()
        for name in names:  # the manifest last: a reader that sees it sees every part
            source_bucket, source_key = _split(f"{staging.rstrip('/')}/{name}")
            bucket, key = _split(f"{output.rstrip('/')}/{name}")
            client.copy_object(
                Bucket=bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": source_key}
            )
        self.remove(staging)


def _split(url: str) -> tuple[str, str]:
    """(bucket, key) of an `s3://bucket/key` URL."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def _exists(output: str, staging: str) -> str:
    return (
        f"{output} appeared while this run was scoring; its parts stay in {staging}: "
        "run again with --overwrite True, or another --output"
    )
