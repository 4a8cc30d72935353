"""`python -m flowship`: commands succeed with 0, and expected failures are one line and 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flowship.cli import main
from tests.helpers import small_config, write_config


def test_sample_writes_the_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sample` writes the asked number of rows and says where."""
    out = tmp_path / "x.csv"
    assert main(["sample", "--rows", "50", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 50
    assert frame["customer_id"].iloc[0] == "C00007-0000000"
    assert capsys.readouterr().out.strip() == f"wrote 50 rows (baseline, seed 7) to {out}"


def test_sample_scenario_and_seed(tmp_path: Path) -> None:
    """--scenario and --seed reach the generator."""
    out = tmp_path / "drift.parquet"
    args = ["sample", "--rows", "60", "--seed", "2", "--scenario", "new_region", "--out", str(out)]
    assert main(args) == 0
    frame = pd.read_parquet(out)
    assert frame["customer_id"].iloc[0] == "C00002-0000000"
    assert "central" in set(frame["region"])


def test_sample_unsupported_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unsupported output name exits 2 with one 'error:' line naming the fix."""
    assert main(["sample", "--rows", "5", "--out", str(tmp_path / "x.json")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: unsupported output 'x.json'")
    assert "use a .parquet or .csv file name" in captured.err
    assert captured.out == ""


def test_sample_zero_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Zero rows exits 2 and writes nothing."""
    assert main(["sample", "--rows", "0", "--out", str(tmp_path / "x.csv")]) == 2
    assert "error: rows must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_sample_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse refuses an unknown scenario with usage and status 2."""
    with pytest.raises(SystemExit) as info:
        main(["sample", "--scenario", "flood", "--out", "x.csv"])
    assert info.value.code == 2
    assert "invalid choice: 'flood'" in capsys.readouterr().err


def test_card_without_runs(empty_datastore: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`card` before any training exits 2 and says to run `make train`."""
    config = write_config(empty_datastore / "project.toml", small_config())
    out = empty_datastore / "card.html"
    assert main(["card", "--config", str(config), "--branch", "x", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no successful TrainFlow run in project 'churn', branch 'test.x'")
    assert "run `make train` first" in err
    assert not out.exists()


def test_card_without_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing config file exits 2 naming the path."""
    missing = tmp_path / "project.toml"
    assert main(["card", "--config", str(missing)]) == 2
    assert f"error: no configuration file at {missing}" in capsys.readouterr().err


def test_card_with_invalid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid config exits 2 with the key that is wrong."""
    config = small_config(training={"metric": "rmse"}, data={"task": "binary"})
    config = write_config(tmp_path / "project.toml", config)
    assert main(["card", "--config", str(config)]) == 2
    assert "'training.metric' 'rmse' is not a metric" in capsys.readouterr().err


def test_a_bug_is_not_turned_into_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only flowship's own errors become `error:` lines; anything else keeps its traceback."""
    from flowship.cli import commands

    def broken(args: object) -> int:
        raise KeyError("x")

    monkeypatch.setattr(commands, "cmd_history", broken)
    with pytest.raises(KeyError):
        main(["history"])


def test_help_imports_no_heavy_library() -> None:
    """`champion --help` imports neither scikit-learn, Evidently nor BentoML."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flowship", "champion", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert {"sklearn", "evidently", "bentoml", "pandas"} & imported == set()
    assert "--pathspec-only" in done.stdout


def test_scope_gives_the_flow_the_same_branch(tmp_path: Path) -> None:
    """The flow options select the branch the command reads."""
    from flowship.cli.scope import Scope
    from flowship.config import load_settings

    settings = load_settings({})
    assert Scope("c.toml", settings).flow_options() == []
    assert Scope("c.toml", settings, branch="x").flow_options() == ["--branch", "x"]
    assert Scope("c.toml", settings, branch="x").branch_name == "test.x"
    prod = Scope("c.toml", settings, branch="x", production=True)
    assert (prod.flow_options(), prod.branch_name) == (["--production", "--branch", "x"], "prod.x")


def test_a_flow_failure_ends_with_its_user_error() -> None:
    """The message of our error in a task's output (one line, or a config error's list)."""
    from flowship.cli.loop import _error_lines

    output = [
        '2026-12-02 03:50:13.781 [1/load/2 (pid 1)] File "flows/train_flow.py", line 128\n',
        "2026-12-02 03:50:13.781 [1/load/2 (pid 1)] flowship.errors.ConfigError: invalid "
        "configuration:\n",
        "2026-12-02 03:50:13.781 [1/load/2 (pid 1)]   - 'gate.min_metrics' has ['rmse']\n",
        "2026-12-02 03:50:13.786 [1/load/2 (pid 1)] Task failed.\n",
    ]
    found: list[str] = []
    for line in output:
        found = _error_lines(line, found)
    assert found == ["invalid configuration:", "  - 'gate.min_metrics' has ['rmse']"]


def test_the_serve_log_folder_honours_an_absolute_path(tmp_path: Path, monkeypatch) -> None:
    """`make serve PREDICTION_LOG_DIR=/abs/path` logs there, not under the repository."""
    from flowship.cli.loop import log_folder

    monkeypatch.chdir(tmp_path)
    assert log_folder("/var/log/flowship") == Path("/var/log/flowship")
    assert log_folder("logs/predictions") == tmp_path.resolve() / "logs" / "predictions"


def test_the_demo_phases_add_up_to_the_time_to_first_prediction(tmp_path: Path) -> None:
    """Each phase lasts from the previous mark; the time to the first served prediction runs
    from the start to the first answer, against the 3-minute target."""
    import time

    from flowship.cli.loop import mark_phase, phase_report

    path = tmp_path / "phases.txt"
    mark_phase(path, "serve ready")
    name, _, stamp = path.read_text().strip().rpartition(" ")
    assert name == "serve ready" and abs(float(stamp) - time.time()) < 60
    path.write_text(
        "start 1000.0\ninstall 1060.5\ntrain 1100.5\nbento 1110.0\nserve ready 1114.0\n"
        "first answer 1115.0\n"
    )
    report = phase_report(path)
    assert report[:3] == ["  install            60.5 s", "  train              40.0 s",
                          "  bento               9.5 s"]  # fmt: skip
    assert report[-1].startswith("  time to the first served prediction: 115 s (meets")
    path.write_text("start 0\nfirst answer 200\n")
    assert "(MISSES the target of 3 minutes)" in phase_report(path)[-1]
    path.write_text("install 5\n")
    assert phase_report(path) == [f"no demo phases in {path} (run `make demo`)"]
