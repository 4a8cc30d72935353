"""The generated churn table: deterministic, shaped as documented, and each scenario drifts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flowship.sample_data import (
    CATEGORICAL_FEATURES,
    ID_COLUMN,
    NUMERIC_FEATURES,
    TARGET,
    generate_churn,
    write_sample,
)

ROWS = 400


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return generate_churn(ROWS, seed=7)


def test_same_seed_gives_an_equal_frame(baseline: pd.DataFrame) -> None:
    """The same rows and seed give the same frame; another seed gives other values and ids."""
    pd.testing.assert_frame_equal(generate_churn(ROWS, seed=7), baseline)
    other = generate_churn(ROWS, seed=8)
    assert not other["monthly_charges"].equals(baseline["monthly_charges"])
    assert set(other[ID_COLUMN]).isdisjoint(baseline[ID_COLUMN])


def test_same_seed_writes_identical_parquet_bytes(tmp_path: Path) -> None:
    """Writing one sample twice gives byte-identical Parquet files."""
    first = write_sample(tmp_path / "a" / "churn.parquet", rows=50, seed=3)
    second = write_sample(tmp_path / "b" / "churn.parquet", rows=50, seed=3)
    assert first.read_bytes() == second.read_bytes()
    # Parquet stores the date in milliseconds; the values are what was generated.
    pd.testing.assert_frame_equal(
        pd.read_parquet(first), generate_churn(50, seed=3), check_dtype=False
    )


def test_write_sample_writes_csv(tmp_path: Path) -> None:
    """A .csv name writes a CSV with every row and column."""
    path = write_sample(tmp_path / "churn.csv", rows=30, seed=1)
    frame = pd.read_csv(path)
    assert frame.shape == (30, 13)
    assert frame[ID_COLUMN].tolist() == generate_churn(30, seed=1)[ID_COLUMN].tolist()


def test_write_sample_refuses_other_suffixes(tmp_path: Path) -> None:
    """An output name that is neither .parquet nor .csv is refused, naming both."""
    with pytest.raises(
        ValueError, match=r"unsupported output 'churn\.json': use a \.parquet or \.csv"
    ):
        write_sample(tmp_path / "churn.json", rows=10)
    assert not (tmp_path / "churn.json").exists()


def test_columns_types_and_target(baseline: pd.DataFrame) -> None:
    """It has an id, a date, the numeric and categorical features and a 0/1 target."""
    assert list(baseline.columns) == [
        ID_COLUMN,
        "signup_date",
        *NUMERIC_FEATURES,
        *CATEGORICAL_FEATURES,
        TARGET,
    ]
    assert len(baseline) == ROWS
    assert baseline[ID_COLUMN].is_unique
    assert baseline[ID_COLUMN].iloc[0] == "C00007-0000000"
    assert pd.api.types.is_datetime64_any_dtype(baseline["signup_date"])
    for column in NUMERIC_FEATURES:
        assert pd.api.types.is_numeric_dtype(baseline[column]), column
    for column in CATEGORICAL_FEATURES:
        assert baseline[column].dtype == object, column
    assert set(baseline[TARGET].unique()) == {0, 1}
    assert 0.15 < baseline[TARGET].mean() < 0.35


def test_baseline_has_a_few_missing_values(baseline: pd.DataFrame) -> None:
    """Only total_charges and age have gaps in the baseline, and only a few percent."""
    missing = baseline.isna().mean()
    assert set(missing[missing > 0].index) <= {"total_charges", "age"}
    assert missing.max() < 0.08


def test_one_row() -> None:
    """A single row is a valid table."""
    assert len(generate_churn(1, seed=0)) == 1


def test_price_increase_raises_charges(baseline: pd.DataFrame) -> None:
    """price_increase raises the mean monthly charge by well over ten."""
    shifted = generate_churn(ROWS, seed=7, scenario="price_increase")
    assert shifted["monthly_charges"].mean() > baseline["monthly_charges"].mean() + 15


def test_new_region_adds_central(baseline: pd.DataFrame) -> None:
    """new_region adds 'central', a region the baseline never has, to about a third of rows."""
    shifted = generate_churn(ROWS, seed=7, scenario="new_region")
    assert "central" not in set(baseline["region"])
    assert 0.25 < (shifted["region"] == "central").mean() < 0.45


def test_missing_surge_blanks_charges(baseline: pd.DataFrame) -> None:
    """missing_surge leaves more than 30% of monthly_charges missing (none in the baseline)."""
    shifted = generate_churn(ROWS, seed=7, scenario="missing_surge")
    assert baseline["monthly_charges"].isna().mean() == 0.0
    assert shifted["monthly_charges"].isna().mean() > 0.3
    assert shifted["payment_method"].isna().mean() > 0.3


def test_concept_shift_changes_dsl_churn(baseline: pd.DataFrame) -> None:
    """concept_shift makes DSL customers churn far more often than in the baseline."""
    shifted = generate_churn(ROWS, seed=7, scenario="concept_shift")

    def dsl_rate(frame: pd.DataFrame) -> float:
        return float(frame.loc[frame["internet_service"] == "dsl", TARGET].mean())

    assert dsl_rate(shifted) > dsl_rate(baseline) + 0.2


def test_unknown_scenario_lists_the_scenarios() -> None:
    """An unknown scenario is refused, listing the known ones."""
    with pytest.raises(
        ValueError, match=r"unknown scenario 'flood'; choose one of baseline, price_increase"
    ):
        generate_churn(10, scenario="flood")


def test_zero_rows_is_refused() -> None:
    """Fewer than one row is refused with the number given."""
    with pytest.raises(ValueError, match="rows must be at least 1, got 0"):
        generate_churn(0)
