"""Production traffic against built Bentos: API keys, non-JSON bodies, fuzzing, explanations,
a challenger in shadow and A/B mode, the live comparison and the promotion it allows, and the
latency gate."""

from __future__ import annotations

import concurrent.futures
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from flowship.auth import key_line
from flowship.config import ServingSettings
from flowship.predict import read_prediction_log
from tests.helpers import AUTH, REPO, run_flow, small_config, write_config
from tests.service.conftest import Runs, serve

pytestmark = pytest.mark.slow
MONITOR_FLOW = REPO / "flows" / "monitor_flow.py"


def records(run, n: int, start: int = 0, with_id: bool = False) -> list[dict]:
    """Raw holdout records as a client sends them (NaN → null), with the id column if asked."""
    schema = run.data.schema
    columns = [*([schema.id_column] if with_id else []), *schema.features]
    frame = run.data.holdout[columns].iloc[start : start + n]
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.astype(object).to_dict(orient="records")
    ]


def probabilities(run, rows: list[dict]) -> np.ndarray:
    """What the run's own pipeline says of `rows`."""
    import pandas as pd

    schema = run.data.schema
    frame = pd.DataFrame.from_records(rows)[schema.features]
    for column in schema.numeric:
        frame[column] = frame[column].astype(float)
    return run.data.model.predict_proba(frame)


def answered(body: dict, classes: list) -> np.ndarray:
    return np.array([[p["probabilities"][str(c)] for c in classes] for p in body["predictions"]])


# ---- access control -------------------------------------------------------------------------


def test_a_valid_key_is_needed_everywhere_but_the_probes_and_metrics(served) -> None:
    """No key or a wrong one: 401 with WWW-Authenticate and nothing about which keys exist; the
    health probes and /metrics (open by default, for Prometheus) need none; /docs.json does."""
    rows = {"rows": records(served.run, 1)}
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic x"}):
        for method, path in (("POST", "/predict"), ("POST", "/explain"), ("GET", "/metadata")):
            answer = httpx.request(method, f"{served.url}{path}", json=rows, headers=headers)
            assert answer.status_code == 401, (headers, path, answer.text)
            assert answer.headers["www-authenticate"] == 'Bearer realm="flowship"'
            assert "tests" not in answer.text  # the key id is not revealed
    for path in ("/livez", "/readyz", "/healthz", "/metrics"):
        assert httpx.get(f"{served.url}{path}").status_code == 200, path
    assert httpx.get(f"{served.url}/docs.json").status_code == 401
    assert httpx.post(f"{served.url}/predict", json=rows, headers=AUTH).status_code == 200


def test_keys_rotate_by_editing_the_file_and_never_reach_a_log(
    champion_run, bento_tag, spec_file, tmp_path: Path
) -> None:
    """A key added to the keys file works within seconds, one removed stops working, with no
    restart; the caller's key id is in the prediction log, and no key is in any log."""
    keys = tmp_path / "api-keys"
    keys.write_text(key_line("alice", "k-alice-0123456789") + "\n")
    spec = json.loads(spec_file.read_text())
    env = {"FLOWSHIP_API_KEYS": "", "FLOWSHIP_API_KEYS_FILE": str(keys)}  # the file, not $VAR
    with serve(bento_tag, spec, tmp_path, champion_run, **env) as running:
        url, body = running.url, {"rows": records(champion_run, 2)}

        answered = []

        def status(key: str) -> int:
            headers = {"authorization": f"Bearer {key}"}
            code = httpx.post(f"{url}/predict", json=body, headers=headers).status_code
            answered.append(code == 200)
            return code

        assert status("k-alice-0123456789") == 200 and status("k-bob-0123456789") == 401
        keys.write_text(key_line("bob", "k-bob-0123456789") + "\n")  # rotate: bob in, alice out
        # each worker reads the file again within a second of a request: wait until every
        # worker has (several answers in a row, as requests go to either)
        deadline, in_a_row = time.monotonic() + 15, 0
        while in_a_row < 8 and time.monotonic() < deadline:
            rotated = status("k-bob-0123456789") == 200 and status("k-alice-0123456789") == 401
            in_a_row = in_a_row + 1 if rotated else 0
            time.sleep(0.1)
        assert in_a_row == 8
        log = read_prediction_log(running.log_dir)
        served_log = Path(running.process_log).read_text()
    lines = "".join(p.read_text() for p in running.log_dir.glob("*.jsonl"))
    assert '"key_id":"alice"' in lines and '"key_id":"bob"' in lines
    assert len(log) == 2 * sum(answered)  # every answered request, none refused
    for text in (lines, served_log):
        assert "k-alice-0123456789" not in text and "k-bob-0123456789" not in text


def test_bodies_that_are_not_json_get_415(served) -> None:
    """A form, a file upload without a boundary, plain text: 415 naming application/json,
    before anything is parsed (BentoML answers some of these with a 500)."""
    for content_type in ("multipart/form-data", "application/x-www-form-urlencoded", "text/plain"):
        headers = {**AUTH, "content-type": content_type}
        answer = httpx.post(f"{served.url}/predict", content=b"rows=1", headers=headers)
        assert answer.status_code == 415, (content_type, answer.text)
        assert "application/json" in answer.json()["error"]


def test_fuzzing_finds_no_server_error_and_answers_match_the_docs(served, tmp_path: Path) -> None:
    """schemathesis, driven by /docs.json: a few hundred generated and mutated requests to
    every endpoint, no 5xx, every answer of the documented schema."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{served.url}/docs.json",
        "--header",
        f"Authorization: {AUTH['authorization']}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        "300",
        "--seed",
        "7",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    generated = int(done.stdout.split(" generated")[0].rsplit(maxsplit=1)[-1])
    assert generated >= 200, done.stdout[-1500:]


# ---- explanations ---------------------------------------------------------------------------


def test_explanations_add_up_to_the_served_probability(served) -> None:
    """/explain: per row, base_value + contributions = P(positive class) of /predict, for
    every input feature; more rows than [serving] explain_max_rows is a 400."""
    rows = records(served.run, 5)
    explained = httpx.post(f"{served.url}/explain", json={"rows": rows}, headers=AUTH, timeout=60)
    assert explained.status_code == 200, explained.text
    body = explained.json()
    predicted = httpx.post(f"{served.url}/predict", json={"rows": rows}, headers=AUTH).json()
    schema = served.run.data.schema
    assert body["model_version"] == served.tag
    for e, p in zip(body["explanations"], predicted["predictions"], strict=True):
        assert set(e["contributions"]) == set(schema.features)
        assert e["base_value"] + sum(e["contributions"].values()) == pytest.approx(
            e["output"], abs=1e-6
        )
        assert e["output"] == pytest.approx(p["probabilities"][str(schema.positive)], abs=1e-9)
        assert e["class"] == schema.positive
    # the background rows travel as plain records: a pickled frame would need pyarrow (pandas'
    # strings) to load, which the Bento does not install
    import bentoml

    stored = Path(bentoml.models.get(served.tag).path) / "custom_objects.pkl"
    assert stored.is_file() and b"pyarrow" not in stored.read_bytes()
    too_many = {"rows": records(served.run, 21)}
    refused = httpx.post(f"{served.url}/explain", json=too_many, headers=AUTH)
    assert refused.status_code == 400 and "rows" in refused.text


# ---- a challenger beside the champion ------------------------------------------------------


def _spec(challenger_bento, **serving) -> dict:
    spec = dict(challenger_bento[1])
    spec["serving"] = ServingSettings(**serving).model_dump(mode="json")
    return spec


def test_shadow_mode_answers_with_the_champion_and_logs_both(
    challenger_bento, champion_run, challenger_run, tmp_path: Path
) -> None:
    """Every answer is the champion's; the log holds the challenger's predictions of the same
    rows (equal to its own pipeline's); /metadata names both models."""
    rows = records(champion_run, 40)
    with serve(challenger_bento[0], _spec(challenger_bento), tmp_path, champion_run) as running:
        bodies = [
            httpx.post(f"{running.url}/predict", json={"rows": rows[i : i + 10]}, headers=AUTH)
            for i in range(0, 40, 10)
        ]
        meta = httpx.get(f"{running.url}/metadata", headers=AUTH).json()
        time.sleep(1.0)  # the shadow scorer logs off the response path
    classes = champion_run.data.schema.classes
    got = np.vstack([answered(b.json(), classes) for b in bodies])
    np.testing.assert_allclose(got, probabilities(champion_run, rows), rtol=1e-9)
    assert meta["challenger"]["run"] == challenger_run.pathspec
    assert meta["challenger"]["mode"] == "shadow" and meta["run"] == champion_run.pathspec
    log = read_prediction_log(tmp_path / "predictions")
    assert len(log) == 40 and set(log["answered_by"]) == {meta["model_version"]}
    shadow = log[[f"challenger_proba_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(shadow, probabilities(challenger_run, rows), rtol=1e-9)
    assert set(log["challenger_run"]) == {challenger_run.pathspec}


def test_a_slow_challenger_drops_rows_instead_of_delaying_answers(
    challenger_bento, champion_run, tmp_path: Path
) -> None:
    """With the shadow queue bounded at a few rows and many clients at once, the challenger
    (a forest of a few hundred trees) falls behind: rows are dropped and counted, every
    request is answered by the champion, and the dropped rows are logged without the
    challenger's prediction."""
    spec = _spec(challenger_bento, shadow_queue_rows=4)
    rows = records(champion_run, 1)
    with serve(challenger_bento[0], spec, tmp_path, champion_run) as running:
        with httpx.Client(base_url=running.url, headers=AUTH, timeout=30) as client:

            def one(_: int) -> int:
                return client.post("/predict", json={"rows": rows}).status_code

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(one, range(300)))
            metrics = client.get("/metrics").text
        time.sleep(1.0)
    assert statuses == [200] * 300
    dropped = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("flowship_shadow_dropped_rows_total")
    )
    assert dropped > 0
    log = read_prediction_log(tmp_path / "predictions")
    assert len(log) == 300
    assert int(log["challenger_proba_1"].isna().sum()) == dropped


def test_ab_mode_answers_a_stable_share_with_the_challenger(
    challenger_bento, champion_run, challenger_run, tmp_path: Path
) -> None:
    """30% of customers (by their id) are answered by the challenger, within a binomial
    tolerance; the same customer always gets the same model; each answer names its model and
    is that model's own prediction."""
    rows = records(champion_run, 300, with_id=True)
    spec = _spec(challenger_bento, challenger_mode="ab", challenger_share=0.3)
    with serve(challenger_bento[0], spec, tmp_path, champion_run) as running:

        def send() -> list[dict]:
            answers = []
            for i in range(0, len(rows), 25):
                body = {"rows": rows[i : i + 25]}
                answer = httpx.post(f"{running.url}/predict", json=body, headers=AUTH)
                answers += answer.json()["predictions"]
            return answers

        first, second = send(), send()
        meta = httpx.get(f"{running.url}/metadata", headers=AUTH).json()
    theirs = meta["challenger"]["model_version"]
    by = [a["model_version"] for a in first]
    assert by == [a["model_version"] for a in second]  # stable per customer
    share = by.count(theirs) / len(by)
    assert abs(share - 0.3) <= 4 * math.sqrt(0.3 * 0.7 / len(by)), share
    classes = champion_run.data.schema.classes
    ours, rival = probabilities(champion_run, rows), probabilities(challenger_run, rows)
    got = answered({"predictions": first}, classes)
    expected = np.where(np.array(by)[:, None] == theirs, rival, ours)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


# ---- the live comparison, the monitor, the promotion -------------------------------------


def test_live_evidence_picks_the_better_challenger_and_promotes_it(
    runs: Runs, challenger_bento, champion_run, challenger_run, tmp_path: Path, monkeypatch
) -> None:
    """Shadow traffic from the shifted world, with delayed labels: `compare` finds the
    challenger (trained on that world) better with an interval above zero; MonitorFlow's
    verdict and card say so; `promote-challenger` makes it the champion, tagged with the
    comparison; and the blocked run or the champion itself cannot be a challenger."""
    from flowship.cli import main
    from flowship.cli.loop import package, send_traffic
    from flowship.cli.scope import Scope
    from flowship.config import read_settings
    from flowship.errors import RegistryError
    from flowship.registry import find_champion, history
    from flowship.runs import branch_name

    log_dir, feedback = tmp_path / "predictions", tmp_path / "feedback"
    config = small_config(
        serving={"prediction_log_dir": str(log_dir)},
        monitor={"feedback_dir": str(feedback), "workspace": str(tmp_path / "ws")},
        gate={"live_min_labels": 500},
    )
    cfg = write_config(tmp_path / "live.toml", config)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(runs.root))
    scope = Scope(str(cfg), read_settings(cfg))
    with serve(challenger_bento[0], _spec(challenger_bento), tmp_path, champion_run) as running:
        send_traffic(running.url, scope, "concept_shift", 1500, 11, 50)
        time.sleep(1.5)  # the challenger's predictions are logged off the response path

    assert main(["compare", "--config", str(cfg), "--out", str(tmp_path / "compare")]) == 0
    live = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert live["rows"] == 1500 and live["challenger_run"] == challenger_run.pathspec
    assert live["favours_challenger"] and live["interval"][0] > 0
    assert "favours" in (tmp_path / "compare" / "compare.html").read_text()

    monitor = run_flow(runs.root, MONITOR_FLOW, config, log_dir=str(log_dir))
    assert monitor.status == "successful", monitor.stdout + monitor.stderr
    verdict = monitor.run.data.verdict
    assert verdict.challenger is not None and verdict.challenger.favours_challenger
    assert any(challenger_run.pathspec in r for r in verdict.reasons)
    assert "FAVOURS THE CHALLENGER" in monitor.run["decide"].task.data.html

    branch = branch_name()
    for bad, why in ((runs.blocked, "did not pass its gate"), (runs.champion, "champion itself")):
        with pytest.raises(RegistryError, match=why):
            package(scope, challenger=bad, tag_file=None)
    assert main(["promote-challenger", "--config", str(cfg), "--out", str(tmp_path / "c")]) == 0
    assert find_champion("churn", branch).pathspec == challenger_run.pathspec
    assert any(
        e.run == challenger_run.pathspec and e.how.startswith("live-")
        for e in history("churn", branch)
    )
    from flowship.runs import get_run

    assert any(t.startswith("live:") for t in get_run(challenger_run.pathspec).tags)


def test_the_latency_gate_warns_by_default_and_blocks_when_asked(runs: Runs) -> None:
    """The slow forest's p99 is on its verdict: a warning under the default settings (it was
    promoted as a dry run would), a blocking failure with latency_blocks and a low limit."""
    from flowship.runs import get_run

    warned = get_run(runs.challenger).data.verdict
    blocked = get_run(runs.blocked).data.verdict
    row = {c.id: c for c in warned.checks}["latency.single_row"]
    assert row.value > 0 and row.critical is False and row.status in {"pass", "warn"}
    failing = [c for c in blocked.checks if c.blocking]
    assert {c.id for c in failing} >= {"latency.single_row"}
    assert not blocked.passed and any("latency" in r for r in blocked.reasons)
