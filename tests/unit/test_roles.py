"""Column roles, each rule on a small frame, with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowship.roles import decide_role, decide_roles, find_leaks

RNG = np.random.default_rng(0)
N = 400


@pytest.mark.parametrize(
    ("values", "role", "reason"),
    [
        (RNG.normal(size=N), "numeric", "numbers"),
        (RNG.choice(["a", "b", "c"], N), "categorical", "3 distinct labels"),
        (RNG.choice([True, False], N), "categorical", "true/false"),
        (RNG.integers(0, 5, N), "categorical", "an integer code with 5 values"),
        (np.arange(N), "id", "a different integer in every row"),
        ([f"ID-{i:05d}" for i in range(N)], "id", "a different value in every row"),
        (pd.date_range("2026-01-01", periods=N).astype(str), "date", "dates written as text"),
        (pd.date_range("2026-01-01", periods=N), "date", "a date/time column"),
        (["same"] * N, "constant", "one value in every row"),
        ([None] * 300 + ["x", "y"] * 50, "missing", "75% missing"),
        (
            [" ".join(RNG.choice(["good", "bad", "fine", "phone", "broke"], 8)) for _ in range(N)],
            "text",
            "free text",
        ),
    ],
)
def test_decide_role(values, role: str, reason: str) -> None:
    decision = decide_role(pd.Series(values, name="c"), max_missing_share=0.2)
    assert (decision.role, decision.column) == (role, "c")
    assert reason in decision.reason


def test_decide_roles_skips_the_target_and_names_the_id() -> None:
    frame = pd.DataFrame({"key": range(N), "x": RNG.normal(size=N), "y": RNG.integers(0, 2, N)})
    decisions = decide_roles(frame, "y", 0.2, id_column="key")
    assert [(d.column, d.role) for d in decisions] == [("key", "id"), ("x", "numeric")]


def test_find_leaks_names_a_planted_leak() -> None:
    """A column that is the outcome in disguise is a leak; an honest feature is not."""
    y = RNG.integers(0, 2, N)
    frame = pd.DataFrame(
        {
            "honest": RNG.normal(size=N) + 0.5 * y,
            "refund_issued": np.where(y == 1, "yes", "no"),
            "y": y,
        }
    )
    decisions = find_leaks(frame, "y", decide_roles(frame, "y", 0.2), classifies=True)
    roles = {d.column: d.role for d in decisions}
    assert roles == {"honest": "numeric", "refund_issued": "leak"}
    leak = next(d for d in decisions if d.role == "leak")
    assert "accuracy 1.000 on held-out rows" in leak.reason
