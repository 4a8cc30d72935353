"""Champion vs challenger on labelled live rows: the better model is picked only when the
evidence is there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowship.compare import bootstrap_difference, compare_live, compare_window, paired_rows
from flowship.config import GateSettings
from flowship.errors import MonitorError
from flowship.schema import Schema

SCHEMA = Schema(
    task="binary",
    target="churned",
    numeric=["x"],
    categorical=[],
    classes=[0, 1],
    categories={},
    numeric_ranges={"x": (0.0, 1.0)},
)
CHAMPION, CHALLENGER = "TrainFlow/1", "TrainFlow/2"


def _window(n: int, champion_skill: float, challenger_skill: float, seed: int = 0) -> pd.DataFrame:
    """A logged window as `live_window` reads it: each model's P(churn) is the truth blurred by
    noise; `skill` is how much signal each keeps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)

    def proba(skill: float) -> np.ndarray:
        return np.clip(0.5 + skill * (y - 0.5) + rng.normal(0, 0.25, n), 0.01, 0.99)

    ours, theirs = proba(champion_skill), proba(challenger_skill)
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row": 0,
            "run": CHAMPION,
            "x": rng.random(n),
            "prediction": (ours > 0.5).astype(int),
            "proba_0": 1 - ours,
            "proba_1": ours,
            "challenger_run": CHALLENGER,
            "challenger_prediction": (theirs > 0.5).astype(int),
            "challenger_proba_0": 1 - theirs,
            "challenger_proba_1": theirs,
            "churned": y,
        }
    )


def _compare(window: pd.DataFrame, **gate: float):
    result = compare_window(window, SCHEMA, "roc_auc", GateSettings(**gate), CHAMPION)
    assert result is not None
    return result[0]


def test_a_truly_better_challenger_is_favoured() -> None:
    live = _compare(_window(2000, 0.2, 0.5), live_min_labels=500)
    assert live.favours_challenger and live.improvement > 0
    assert live.interval[0] > 0 and live.challenger > live.champion
    assert live.rows == 2000 and live.challenger_run == CHALLENGER
    assert all(c.status == "pass" for c in live.checks)
    assert "favours the challenger" in live.summary()


def test_a_worse_challenger_is_not() -> None:
    live = _compare(_window(2000, 0.5, 0.2), live_min_labels=500)
    assert not live.favours_challenger and live.improvement < 0
    assert any(c.id == "live.metric" and c.status == "fail" for c in live.checks)


def test_an_equal_challenger_is_not_favoured() -> None:
    """Not worse, but not better either: no reason to switch."""
    window = _window(2000, 0.4, 0.4)
    window[[c for c in window if c.startswith("challenger_proba")]] = window[
        ["proba_0", "proba_1"]
    ].to_numpy()
    live = _compare(window, live_min_labels=500)
    assert not live.favours_challenger and live.improvement == pytest.approx(0.0)


def test_too_few_labels_decide_nothing() -> None:
    window = _window(300, 0.2, 0.6)
    window.loc[100:, "churned"] = np.nan  # 100 labelled
    live = _compare(window, live_min_labels=500)
    assert not live.favours_challenger and live.rows == 100 and live.improvement is None
    assert [c.status for c in live.checks] == ["fail", "skipped"]


def test_rows_the_challenger_dropped_are_left_out_and_noted() -> None:
    window = _window(1000, 0.3, 0.5)
    window.loc[:99, ["challenger_proba_0", "challenger_proba_1"]] = np.nan
    paired = paired_rows(window, SCHEMA, CHAMPION)
    assert paired.rows == 900 and "100 row(s) were not scored" in paired.notes[0]


def test_a_window_without_a_challenger() -> None:
    window = _window(10, 0.3, 0.5).drop(
        columns=[c for c in _window(1, 0, 0) if c.startswith("challenger_")]
    )
    assert compare_window(window, SCHEMA, "roc_auc", GateSettings(), CHAMPION) is None
    with pytest.raises(MonitorError, match="no challenger predictions"):
        paired_rows(window, SCHEMA, CHAMPION)


def test_the_interval_covers_the_difference() -> None:
    paired = paired_rows(_window(1500, 0.3, 0.4), SCHEMA, CHAMPION)
    point, low, high = bootstrap_difference(paired, SCHEMA, "roc_auc")
    assert low < point < high and high - low < 0.1


def test_lower_is_better_metrics_turn_around() -> None:
    """For log loss (lower is better) a better challenger still has a positive improvement."""
    window = _window(2000, 0.2, 0.5)
    result = compare_live(
        paired_rows(window, SCHEMA, CHAMPION),
        SCHEMA,
        "log_loss",
        GateSettings(live_min_labels=500),
        CHAMPION,
    )[0]
    assert result.improvement > 0 and result.challenger < result.champion
