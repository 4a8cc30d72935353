"""Reading tables: the embedded sample, CSV and Parquet files, globs of them, local or `s3://`."""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
    paths = source_files(source)
    frames = [_read_file(Path(p), columns, categorical or []) for p in paths]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def source_files(source: str, named: str = "[data] source") -> list[str]:
    """The files a CSV/Parquet source names, in order: the path or `s3://` URL itself, or the
    sorted matches of a glob. `named` is what the user calls the source, for the messages.

    Raises:
        DataValidationError: a glob that matches nothing, or S3 that cannot be listed.
    """
    if source.startswith("s3://"):
        from metaflow import S3
        from metaflow.exception import MetaflowException

        try:
            with S3() as s3:
                return _s3_urls(s3, source, named)
        except MetaflowException as exc:
            raise DataValidationError(_s3_failure(source, exc)) from None
    if not glob.has_magic(source):
        return [source]
    paths = sorted(glob.glob(source))
    if not paths:
        raise DataValidationError(f"no file matches {named} = {source!r}")
    return paths


def _s3_urls(s3: Any, source: str, named: str = "[data] source") -> list[str]:
    """The object URLs an `s3://` URL or glob names (a URL itself, unchecked)."""
    if not glob.has_magic(source):
        return [source]
    magic = min(i for i, ch in enumerate(source) if ch in "*?[")
    listed = s3.list_recursive([source[:magic].rsplit("/", 1)[0] + "/"])
    urls = sorted(o.url for o in listed if fnmatch.fnmatchcase(o.url, source))
    if not urls:
        raise DataValidationError(f"no object matches {named} = {source!r}")
    return urls


def _s3_failure(source: str, exc: Exception) -> str:
    return (
        f"could not read {source}: {exc} (check the URL, the credentials and, for an "
        "S3-compatible store, METAFLOW_S3_ENDPOINT_URL)"
    )


def _read_s3(source: str, columns: list[str] | None, categorical: list[str]) -> pd.DataFrame:
    """Objects at an `s3://bucket/key` URL or glob, read with Metaflow's S3 client (its
    endpoint and credentials: the datastore's own settings)."""
    from metaflow import S3
    from metaflow.exception import MetaflowException

    try:
        with S3() as s3:
            objects = s3.get_many(_s3_urls(s3, source))
            frames = [_read_file(Path(o.path), columns, categorical, name=o.url) for o in objects]
    except MetaflowException as exc:
        raise DataValidationError(_s3_failure(source, exc)) from None
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class TableFile:
    """One CSV or Parquet file of a source: where it is, its columns and its number of rows."""

    url: str
    columns: list[str]
    rows: int


def describe_file(url: str) -> TableFile:
    """A file's columns and rows, read from a Parquet footer (a few small reads, also in S3)
    or by counting a CSV file's records (a chunk in memory at a time).

    Raises:
        DataValidationError: the file is missing, unreadable or of an unsupported type.
    """
    with _opened(url) as handle:
        try:
            if _suffix(url) == ".parquet":
                meta = _parquet(handle).metadata
                return TableFile(url, list(meta.schema.to_arrow_schema().names), meta.num_rows)
            columns, rows = _count_csv(handle)
            return TableFile(url, columns, rows)
        except (ValueError, OSError) as exc:
            raise DataValidationError(f"could not read {url}: {exc}") from None


def read_rows(
    url: str,
    columns: list[str],
    start: int,
    stop: int,
    categorical: list[str] | None = None,
) -> pd.DataFrame:
    """Rows `start` to `stop` (excluded) of one file, only `columns` (those it has): of a
    Parquet file only the row groups holding them are read (in S3: only their byte ranges),
    so a shard of a large file costs its own rows, not the file's.

    Raises:
        DataValidationError: the file is missing, unreadable or of an unsupported type.
    """
    with _opened(url) as handle:
        try:
            if _suffix(url) != ".parquet":
                return _read_csv(handle, columns, start, stop)
            parquet = _parquet(handle, categorical or [])
            return _to_pandas(_row_range(parquet, columns, start, stop))
        except (ValueError, OSError) as exc:
            raise DataValidationError(f"could not read {url}: {exc}") from None


@contextlib.contextmanager
def _opened(url: str) -> Iterator[Any]:
    """A local path for a local file or an S3 CSV (downloaded), or a random-access file over
    byte ranges for an S3 Parquet object; checks the file type first.

    Raises:
        DataValidationError: an unsupported file type, a missing file, S3 that fails.
    """
    if _suffix(url) not in {".parquet", ".csv", ".gz"}:
        raise DataValidationError(
            f"unsupported file type {Path(url).name!r}; use .csv or .parquet files"
        )
    if not url.startswith("s3://"):
        if not Path(url).is_file():
            raise DataValidationError(
                f"data file {url} does not exist; check the path (relative to {Path.cwd()})"
            )
        yield Path(url)
        return
    from metaflow import S3
    from metaflow.exception import MetaflowException

    try:
        with S3() as s3:
            if _suffix(url) == ".parquet":
                yield io.BufferedReader(_S3Range(s3, url), buffer_size=1 << 20)
            else:
                yield Path(s3.get(url).path)
    except MetaflowException as exc:
        raise DataValidationError(_s3_failure(url, exc)) from None


class _S3Range(io.RawIOBase):
    """An S3 object as a seekable read-only file: each read is one ranged GET through
    Metaflow's S3 client, so Parquet readers fetch only the footer and the columns they read."""

    def __init__(self, s3: Any, url: str) -> None:
        self._s3, self._url = s3, url
        self._size = int(s3.info(url).size)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        from metaflow.plugins.datatools.s3 import S3GetObject

        length = min(len(buffer), self._size - self._position)
        if length <= 0:
            return 0
        blob = self._s3.get(S3GetObject(self._url, self._position, length)).blob
        buffer[: len(blob)] = blob
        self._position += len(blob)
        return len(blob)


def _row_range(parquet: Any, columns: list[str], start: int, stop: int) -> Any:
    """Rows `start` to `stop` of a Parquet file as an Arrow table, decoded in batches from the
    row groups that hold them: a shard of a file written as one large row group holds its own
    rows in memory, not the group's."""
    import pyarrow as pa

    meta = parquet.metadata
    groups: list[int] = []
    offset = first = 0
    for i in range(meta.num_row_groups):
        size = meta.row_group(i).num_rows
        if offset < stop and offset + size > start:
            first = first if groups else offset
            groups.append(i)
        offset += size
    present = _present(columns, parquet.schema_arrow.names)
    skip, wanted, kept = start - first, stop - start, []
    batches = parquet.iter_batches(
        batch_size=1 << 16, row_groups=groups, columns=present, use_pandas_metadata=False
    )
    for batch in batches:
        if skip >= len(batch):
            skip -= len(batch)
            continue
        piece = batch.slice(skip, wanted)
        skip, wanted = 0, wanted - len(piece)
        kept.append(piece)
        if wanted == 0:
            break
    if kept:
        return pa.Table.from_batches(kept)
    empty = parquet.schema_arrow.empty_table()
    return empty if present is None else empty.select(present)


def _suffix(url: str) -> str:
    return Path(url).suffix.lower()


def _parquet(handle: Any, categorical: list[str] | None = None) -> Any:
    """A `pyarrow.parquet.ParquetFile`, its `categorical` text columns read as dictionaries."""
    import pyarrow.parquet as pq

    wanted = _text_columns(pq.read_schema(handle), categorical or [])
    return pq.ParquetFile(handle, read_dictionary=wanted or None)


def _text_columns(schema: Any, columns: list[str]) -> list[str]:
    """Those of `columns` that a Parquet schema stores as text."""
    import pyarrow as pa

    text = {
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    }
    return [c for c in columns if c in text]


def _to_pandas(table: Any) -> pd.DataFrame:
    """An Arrow table as pandas, each Arrow column freed as soon as pandas has it (no second
    copy), the decompression buffers given back to the OS."""
    import pyarrow as pa

    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    pa.default_memory_pool().release_unused()
    return frame


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
            import pyarrow.parquet as pq  # only when reading Parquet: the service never does

            schema = pq.read_schema(path)
            table = pq.read_table(
                path,
                columns=_present(columns, schema.names),
                read_dictionary=_text_columns(schema, categorical),
            )
            return _to_pandas(table)
        if suffix in {".csv", ".gz"}:
            return _read_csv(path, columns)
    except (ValueError, OSError) as exc:
        raise DataValidationError(f"could not read {path}: {exc}") from None
    raise DataValidationError(
        f"unsupported file type {Path(name or path).name!r}; use .csv or .parquet files"
    )


_GZIP_MAGIC = b"\x1f\x8b"


def _read_csv(
    path: Path, columns: list[str] | None, start: int = 0, stop: int | None = None
) -> pd.DataFrame:
    """A CSV file (its records `start` to `stop`), gzip-compressed or not (by its first bytes,
    whatever its name), in UTF-8 or, when it is not valid UTF-8, Latin-1 (Windows exports)."""
    compression = _compression(path)
    for encoding in ("utf-8", "latin-1"):
        try:
            present = list(pd.read_csv(path, nrows=0, compression=compression, encoding=encoding))
            return pd.read_csv(
                path,
                usecols=_present(columns, present),
                compression=compression,
                encoding=encoding,
                skiprows=range(1, start + 1) if start else None,
                nrows=None if stop is None else stop - start,
            )
        except UnicodeDecodeError:
            continue
    raise DataValidationError(f"could not read {path}: neither UTF-8 nor Latin-1 text")


def _count_csv(path: Path) -> tuple[list[str], int]:
    """A CSV file's columns and number of records, counted a million records at a time."""
    compression = _compression(path)
    for encoding in ("utf-8", "latin-1"):
        try:
            columns = list(pd.read_csv(path, nrows=0, compression=compression, encoding=encoding))
            chunks = pd.read_csv(
                path,
                usecols=columns[:1] or None,
                compression=compression,
                encoding=encoding,
                chunksize=1 << 20,
            )
            return columns, sum(len(chunk) for chunk in chunks)
        except UnicodeDecodeError:
            continue
    raise DataValidationError(f"could not read {path}: neither UTF-8 nor Latin-1 text")


def _compression(path: Path) -> str | None:
    """gzip when the file starts with gzip's magic bytes, whatever its name."""
    with path.open("rb") as handle:
        return "gzip" if handle.read(2) == _GZIP_MAGIC else None


def _present(columns: list[str] | None, present: list[str]) -> list[str] | None:
    """Only the wanted columns that exist: the missing ones are reported by `infer_schema`."""
    return None if columns is None else [c for c in columns if c in present]
