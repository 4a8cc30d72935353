"""`flowship init`: the config it writes for a table, and its refusals."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowship import init
from flowship.cli import main
from flowship.config import load_settings
from flowship.errors import DataValidationError
from flowship.init import plan_project, project_name, render_config
from flowship.sample_data import generate_delivery, generate_reviews


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("data/Customer Churn-2024.csv", "customer_churn_2024"),
        ("s3://bucket/tables/*.parquet", "tables"),
        ("2025_sales.parquet", "t_2025_sales"),
    ],
)
def test_project_name_is_valid_for_metaflow(path: str, name: str) -> None:
    assert project_name(path) == name


def test_the_written_config_is_valid_and_says_why() -> None:
    """Regression: the roles with reasons, the task and its metric, the gate between the
    baseline and a cross-validated ridge, and settings that load."""
    frame = generate_delivery(1500, seed=3)
    plan = plan_project(frame, "data/deliveries.csv", "delivery_minutes")
    text = render_config(plan)
    settings = load_settings(tomllib.loads(text))
    assert settings.project.name == "deliveries"
    assert settings.data.task == "regression" and settings.training.metric == "rmse"
    assert settings.data.id_column == "order_id"
    assert "distance_km" in (settings.data.numeric_features or [])
    assert "ordered_at" not in (settings.data.numeric_features or [])
    assert '"ordered_at",  # date' in text
    m = plan.measurement
    assert m.model < m.bound < m.baseline  # rmse: lower is better
    assert settings.gate.min_metrics == {"rmse": m.bound}
    assert "maximum, halfway between the mean baseline" in text


def test_text_columns_and_class_shares() -> None:
    """Reviews: the text column is a text feature; min_class_share lets the table pass."""
    plan = plan_project(generate_reviews(1200, seed=2), "reviews.csv", "sentiment")
    assert plan.features("text") == ["review"]
    assert plan.task.name == "multiclass"
    shares = generate_reviews(1200, seed=2)["sentiment"].value_counts(normalize=True)
    assert plan.min_class_share <= shares.min()
    assert plan.measurement.model > plan.measurement.bound > plan.measurement.baseline


@pytest.mark.parametrize(
    ("frame", "target", "message"),
    [
        (pd.DataFrame({"x": [], "y": []}), "y", "has no rows"),
        (pd.DataFrame({"x": [1, 2], "y": [0, 1]}), "z", r"not a column .*\['x', 'y'\]"),
        (pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, 1, 1]}), "y", "has one class"),
        (
            pd.DataFrame({"k": [f"id{i}" for i in range(200)], "y": [0, 1] * 100}),
            "y",
            "no usable feature",
        ),
    ],
)
def test_plan_project_refuses_with_the_fix(frame: pd.DataFrame, target: str, message: str):
    with pytest.raises(DataValidationError, match=message):
        plan_project(frame, "t.csv", target)


def test_init_writes_once_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    """The command prints its decisions and the next command; an existing file needs
    --force; a bad table writes nothing."""
    table = tmp_path / "reviews.csv"
    generate_reviews(800, seed=1).to_csv(table, index=False)
    out = tmp_path / "reviews.toml"
    assert main(["init", str(table), "--target", "sentiment", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "review" in printed and "text" in printed
    assert f"next: make train CONFIG={out}" in printed
    assert main(["init", str(table), "--target", "sentiment", "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    missing = tmp_path / "missing.toml"
    assert main(["init", str(tmp_path / "nope.csv"), "--target", "y", "--out", str(missing)]) == 2
    assert not missing.exists()


def _classes(counts: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """A table whose target `y` has `counts` rows per class, shuffled, and one numeric
    feature that tells the classes apart only roughly (no leak)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(list(counts), list(counts.values())))
    codes = pd.Series(y).map({c: i for i, c in enumerate(counts)}).to_numpy()
    return pd.DataFrame({"x": rng.normal(size=len(y)) + codes, "y": y})


RARE = (
    "class(es) ['c'] are below 1% of the rows: models hardly learn them; collect more or merge them"
)


@pytest.mark.parametrize(("rare", "warned"), [(2, True), (3, False)])  # of 300 rows
def test_a_class_below_one_percent_is_warned_about(rare: int, warned: bool) -> None:
    """A class under 1% of the rows is named in a warning, in the config too; one at 1% is
    not; either way min_class_share lets the table pass its own gate."""
    plan = plan_project(_classes({"a": 180, "b": 120 - rare, "c": rare}), "t.csv", "y")
    assert plan.warnings == ([RARE] if warned else [])
    assert (f"# warning: {RARE}" in render_config(plan)) is warned
    assert plan.rarest_share == rare / 300
    assert plan.min_class_share <= rare / 300


def test_init_force_overwrites_and_prints_the_warnings(tmp_path: Path, capsys) -> None:
    """Without --force an existing file is left as it was; with it, the config replaces it;
    the warnings are printed."""
    table = tmp_path / "t.csv"
    _classes({"a": 180, "b": 118, "c": 2}).to_csv(table, index=False)
    out = tmp_path / "mine.toml"
    out.write_text("# my own config\n")
    command = ["init", str(table), "--target", "y", "--out", str(out)]
    assert main(command) == 2
    assert out.read_text() == "# my own config\n"
    capsys.readouterr()
    assert main([*command, "--force"]) == 0
    assert f"warning: {RARE}" in capsys.readouterr().out
    assert load_settings(tomllib.loads(out.read_text())).data.target == "y"


def test_a_large_table_is_planned_on_a_seeded_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_ROWS rows, roles and the measurement use a seeded sample of that many rows
    (the same plan every time) in which every class keeps a few rows; the row count,
    min_rows, the task, the class shares and the id column's uniqueness are the whole
    table's. So a rare class the random sample misses is still a class (multiclass, not
    binary), warned about, and min_class_share lets the table pass its own gate; an id
    repeated outside the sample is not written as id_column (training would refuse it)."""
    monkeypatch.setattr(init, "MAX_ROWS", 300)
    measured: list[dict[str, int]] = []
    real = init.measure

    def measure(frame: pd.DataFrame, *args: object) -> init.Measurement:
        measured.append(frame["y"].value_counts().to_dict())
        return real(frame, *args)

    monkeypatch.setattr(init, "measure", measure)
    frame = _classes({"a": 600, "b": 394, "c": 6}, seed=7)  # c: 0.6%, none in the sample
    orders = [f"o{i:04d}" for i in range(1000)]
    orders[997] = orders[0]  # an id repeated once, in rows the sample does not hold
    frame.insert(0, "order", orders)
    plan = plan_project(frame, "t.csv", "y")
    (counts,) = measured
    assert counts.get("c") == init.FOLDS and 300 <= sum(counts.values()) <= 300 + init.FOLDS
    assert (plan.rows, plan.min_rows, plan.task.name) == (1000, 500, "multiclass")
    assert plan.warnings == [RARE]
    assert plan.rarest_share == 6 / 1000 and plan.min_class_share <= 6 / 1000
    assert [d.role for d in plan.decisions if d.column == "order"] == ["id"]  # in the sample
    assert plan.id_column is None
    assert render_config(plan_project(frame, "t.csv", "y")) == render_config(plan)
