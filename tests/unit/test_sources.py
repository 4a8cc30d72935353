"""Reading tables: the sample, CSV, Parquet and globs; every refusal names the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowship.errors import DataValidationError
from flowship.sample_data import generate_churn
from flowship.sources import describe_file, read_rows, read_source, source_files

# read_source


def test_read_source_generates_a_sample() -> None:
    """A sample: source generates the table its options describe."""
    frame = read_source("sample:churn?rows=40&seed=5&scenario=new_region")
    pd.testing.assert_frame_equal(frame, generate_churn(40, seed=5, scenario="new_region"))


def test_read_source_keeps_only_wanted_sample_columns() -> None:
    """`columns` narrows a sample to those columns, in that order."""
    frame = read_source("sample:churn?rows=10", columns=["churned", "age"])
    assert list(frame.columns) == ["churned", "age"]
    assert len(frame) == 10


def test_read_source_reads_csv(tmp_path: Path) -> None:
    """A CSV path reads every row with its header."""
    expected = generate_churn(25, seed=2)
    expected.to_csv(tmp_path / "customers.csv", index=False)
    frame = read_source(str(tmp_path / "customers.csv"))
    assert frame.shape == (25, 13)
    assert frame["customer_id"].tolist() == expected["customer_id"].tolist()
    assert frame["monthly_charges"].tolist() == expected["monthly_charges"].tolist()


def test_read_source_reads_parquet_columns(tmp_path: Path) -> None:
    """A Parquet read returns the wanted columns that exist and skips missing ones."""
    generate_churn(25, seed=2).to_parquet(tmp_path / "customers.parquet", index=False)
    frame = read_source(str(tmp_path / "customers.parquet"), columns=["age", "nope", "churned"])
    assert list(frame.columns) == ["age", "churned"]
    pd.testing.assert_frame_equal(frame, generate_churn(25, seed=2)[["age", "churned"]])


def test_read_source_concatenates_a_glob(tmp_path: Path) -> None:
    """A glob reads every matching file, in name order, into one frame."""
    generate_churn(20, seed=1).to_csv(tmp_path / "part-1.csv", index=False)
    generate_churn(30, seed=2).to_csv(tmp_path / "part-2.csv", index=False)
    (tmp_path / "other.csv").write_text("unrelated\n1\n")
    frame = read_source(str(tmp_path / "part-*.csv"))
    assert len(frame) == 50
    assert frame.index.tolist() == list(range(50))
    assert frame["customer_id"].iloc[0] == "C00001-0000000"
    assert frame["customer_id"].iloc[20] == "C00002-0000000"


def test_read_source_glob_without_match(tmp_path: Path) -> None:
    """A glob that matches nothing is refused, naming the source."""
    with pytest.raises(DataValidationError, match=r"no file matches \[data\] source = .*\*\.csv"):
        read_source(str(tmp_path / "*.csv"))


def test_read_source_missing_file(tmp_path: Path) -> None:
    """A missing file names the path and the [data] source key to fix."""
    missing = tmp_path / "customers.csv"
    with pytest.raises(
        DataValidationError, match=rf"data file {missing} does not exist; fix \[data\] source"
    ):
        read_source(str(missing))


def test_read_source_unsupported_suffix(tmp_path: Path) -> None:
    """A file that is neither CSV nor Parquet is refused, naming the allowed types."""
    path = tmp_path / "customers.json"
    path.write_text("{}")
    with pytest.raises(
        DataValidationError,
        match=r"unsupported file type 'customers\.json'; use \.csv or \.parquet",
    ):
        read_source(str(path))


def test_read_source_unreadable_parquet(tmp_path: Path) -> None:
    """A file named .parquet that is not Parquet is refused, naming the file."""
    path = tmp_path / "broken.parquet"
    path.write_text("not parquet")
    with pytest.raises(DataValidationError, match=r"could not read .*broken\.parquet"):
        read_source(str(path))


def test_read_source_unknown_sample_option() -> None:
    """An unknown sample option is refused, listing the allowed ones."""
    with pytest.raises(
        DataValidationError,
        match=r"unknown sample option\(s\) \['colour'\].*allowed: rows, seed, scenario",
    ):
        read_source("sample:churn?rows=10&colour=red")


def test_read_source_unknown_sample_dataset() -> None:
    """Only the churn sample exists; another name shows the right form."""
    with pytest.raises(
        DataValidationError, match=r"unknown sample dataset 'iris'.*use 'sample:churn\?rows="
    ):
        read_source("sample:iris")


def test_read_source_non_integer_rows() -> None:
    """Sample rows that are not an integer are refused."""
    with pytest.raises(DataValidationError, match=r"rows and seed in .* must be integers"):
        read_source("sample:churn?rows=many")


def test_read_source_bad_sample_scenario() -> None:
    """A sample scenario that does not exist is refused with the scenarios to choose from."""
    with pytest.raises(DataValidationError, match=r"unknown scenario 'flood'; choose one of"):
        read_source("sample:churn?rows=10&scenario=flood")


def test_read_source_reads_gzip_whatever_its_name_and_latin_1(tmp_path: Path) -> None:
    """A gzip-compressed CSV named .csv, and a Latin-1 export, read like any CSV."""
    import gzip

    frame = generate_churn(20, seed=4)
    with gzip.open(tmp_path / "packed.csv", "wt") as handle:
        frame.to_csv(handle, index=False)
    assert len(read_source(str(tmp_path / "packed.csv"))) == 20
    (tmp_path / "latin.csv").write_bytes("city,y\nMünchen,1\nZürich,0\n".encode("latin-1"))
    assert read_source(str(tmp_path / "latin.csv"))["city"].tolist() == ["München", "Zürich"]


# source_files, describe_file, read_rows (batch scoring reads files by row ranges)


def test_describe_file_counts_rows_and_columns(tmp_path: Path) -> None:
    """A Parquet file is described from its footer, a CSV file (gzip or not) by counting its
    records, whatever a quoted field holds."""
    import gzip

    frame = generate_churn(37, seed=4)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    described = describe_file(str(tmp_path / "a.parquet"))
    assert (described.rows, described.columns) == (37, list(frame.columns))
    frame.loc[3, "region"] = "north,\nsouth"  # a record over two lines
    with gzip.open(tmp_path / "b.csv", "wt") as handle:
        frame.to_csv(handle, index=False)
    assert describe_file(str(tmp_path / "b.csv")).rows == 37
    assert source_files(str(tmp_path / "*")) == [
        str(tmp_path / "a.parquet"),
        str(tmp_path / "b.csv"),
    ]
    with pytest.raises(DataValidationError, match="does not exist"):
        describe_file(str(tmp_path / "c.parquet"))
    with pytest.raises(DataValidationError, match=r"unsupported file type 'c\.json'"):
        describe_file(str(tmp_path / "c.json"))


def test_read_rows_reads_a_row_range(tmp_path: Path) -> None:
    """Rows start to stop of a file, only the wanted columns that exist: across Parquet row
    groups, inside one large group, and of a CSV file."""
    frame = generate_churn(100, seed=4)
    frame.to_parquet(tmp_path / "groups.parquet", index=False, row_group_size=16)
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    columns = ["customer_id", "age", "nope"]
    for name in ("groups.parquet", "one.parquet", "rows.csv"):
        for start, stop in ((0, 100), (10, 50), (31, 33), (99, 100)):
            got = read_rows(str(tmp_path / name), columns, start, stop)
            assert list(got.columns) == ["customer_id", "age"], name
            assert got["customer_id"].tolist() == frame["customer_id"].iloc[start:stop].tolist()
            np.testing.assert_array_equal(got["age"], frame["age"].iloc[start:stop])
    regions = read_rows(str(tmp_path / "groups.parquet"), ["region"], 5, 40, ["region"])
    assert isinstance(regions["region"].dtype, pd.CategoricalDtype)
    assert regions["region"].astype(str).tolist() == frame["region"].iloc[5:40].tolist()
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataValidationError, match=r"could not read .*bad\.parquet"):
        read_rows(str(tmp_path / "bad.parquet"), columns, 0, 1)
