"""The built Bento served in a subprocess on 127.0.0.1, and the service class in-process."""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os

import httpx
import numpy as np
import pandas as pd
import pytest

from flowship.predict import read_prediction_log
from tests.helpers import AUTH

pytestmark = pytest.mark.slow


def rows_of(run, n: int, start: int = 0) -> list[dict]:
    """Raw holdout records as a client would send them (NaN → null)."""
    frame = run.data.holdout[run.data.schema.features].iloc[start : start + n]
    records = frame.astype(object).to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in records
    ]


def post(served, body, raw: bool = False) -> httpx.Response:
    kwargs = {"content": body} if raw else {"json": body}
    headers = {"content-type": "application/json", **AUTH}
    return httpx.post(f"{served.url}/predict", headers=headers, timeout=30, **kwargs)


def test_predictions_equal_the_champion_pipeline(served) -> None:
    """Probabilities equal the champion pipeline's own predict_proba on the same rows."""
    rows = rows_of(served.run, 25)
    response = post(served, {"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == served.tag and len(body["request_id"]) == 32
    data = served.run.data
    expected = data.model.predict_proba(data.holdout[data.schema.features].iloc[:25])
    got = np.array(
        [[p["probabilities"][str(c)] for c in data.schema.classes] for p in body["predictions"]]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    labels = [p["prediction"] for p in body["predictions"]]
    assert labels == [data.schema.classes[i] for i in expected.argmax(axis=1)]


def test_metadata_matches_the_champion_run(served) -> None:
    """/metadata names the run, commit, data, verdict and metrics of the exported champion."""
    meta = httpx.get(f"{served.url}/metadata", headers=AUTH, timeout=10).json()
    data = served.run.data
    assert meta["model_version"] == served.tag
    assert meta["run"] == served.run.pathspec
    assert meta["git_sha"] == data.lineage["git_sha"]
    assert meta["data_fingerprint"] == data.data_fingerprint
    assert meta["verdict"]["id"] == data.verdict.id and meta["verdict"]["decision"] == "promote"
    assert meta["metrics"] == pytest.approx(data.metrics)
    assert meta["schema"]["numeric"] == data.schema.numeric


def test_docs_json_documents_the_real_fields(served) -> None:
    """The OpenAPI document lists every feature of the stored schema as a required field."""
    spec = httpx.get(f"{served.url}/docs.json", headers=AUTH, timeout=10).json()
    text = json.dumps(spec)
    for feature in served.run.data.schema.features:
        assert f'"{feature}"' in text


@pytest.mark.parametrize(
    ("name", "mutate", "field"),
    [
        ("missing field", lambda r: r.pop("tenure_months"), "tenure_months"),
        ("wrong type", lambda r: r.update(monthly_charges="cheap"), "monthly_charges"),
        ("object for a category", lambda r: r.update(contract={"plan": 2}), "contract"),
        ("unknown field", lambda r: r.update(colour="red"), "colour"),
    ],
)
def test_bad_records_are_400_naming_the_field(served, name, mutate, field) -> None:
    """Each kind of bad record is refused with 400 and the field named, never 5xx."""
    row = rows_of(served.run, 1)[0]
    mutate(row)
    response = post(served, {"rows": [row]})
    assert response.status_code == 400, (name, response.text)
    assert field in response.text


def test_bad_requests_are_4xx_never_5xx(served) -> None:
    """Non-finite numbers, empty lists, too many rows, malformed JSON: all 4xx, field named."""
    row = json.dumps(rows_of(served.run, 1)[0])
    infinite = row.replace('"tenure_months": ', '"tenure_months": Infinity, "x": ', 1)
    cases = {
        "non-finite": (f'{{"rows": [{infinite}]}}', "tenure_months"),
        "empty list": ('{"rows": []}', "rows"),
        "too many rows": (json.dumps({"rows": rows_of(served.run, 51)}), "rows"),
        "not json": ("{rows: nope", ""),
        "no rows key": ('{"records": []}', "rows"),
        "rows not a list": ('{"rows": 3}', "rows"),
    }
    for name, (body, field) in cases.items():
        response = post(served, body, raw=True)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert field in response.text, name


def test_unknown_categories_are_accepted_and_counted(served) -> None:
    """A category never seen in training is predicted (ignored by the model) and counted."""
    row = rows_of(served.run, 1)[0] | {"region": "atlantis"}
    assert post(served, {"rows": [row, row]}).status_code == 200
    metrics = httpx.get(f"{served.url}/metrics", headers=AUTH, timeout=10).text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("flowship_unknown_categories_total") and 'feature="region"' in line
    ]
    assert counted and float(counted[0].split()[-1]) >= 2


def test_metrics_count_requests(served) -> None:
    """/metrics is Prometheus text whose request counter grows with each /predict call."""

    def predict_count() -> float:
        text = httpx.get(f"{served.url}/metrics", headers=AUTH, timeout=10).text
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("bentoml_service_request_total") and 'endpoint="/predict"' in line
        )

    before = predict_count()
    for _ in range(3):
        assert post(served, {"rows": rows_of(served.run, 1)}).status_code == 200
    assert predict_count() == before + 3


def test_prediction_log_holds_exactly_the_requests_sent(served) -> None:
    """Every row of every answered request is logged once, under its request id."""
    sent = {}
    for i in range(4):
        body = post(served, {"rows": rows_of(served.run, i + 1, start=10 * i)}).json()
        sent[body["request_id"]] = i + 1
    log = read_prediction_log(served.log_dir)
    mine = log[log["request_id"].isin(sent)]
    assert mine.groupby("request_id").size().to_dict() == sent
    assert set(mine["model_version"]) == {served.tag}
    assert {"tenure_months", "region", "prediction", "proba_0", "proba_1"} <= set(mine.columns)
    bad = post(served, {"rows": []})
    assert bad.status_code == 400
    assert len(read_prediction_log(served.log_dir)) == len(log)  # refused input is not logged


def test_service_class_in_process(spec_file, champion_run, monkeypatch, tmp_path) -> None:
    """The service class itself: batched predictions of concurrent calls, logged, typed."""
    monkeypatch.setenv("FLOWSHIP_BENTO_SPEC", str(spec_file))
    monkeypatch.setenv("FLOWSHIP_PREDICTION_LOG_DIR", str(tmp_path / "log"))
    service = importlib.import_module("flowship.service")
    svc = service.Flowship.inner()
    rows = [service.Row(**r) for r in rows_of(champion_run, 6)]

    async def many():
        return await asyncio.gather(*(svc.predict(rows=[r]) for r in rows))

    answers = asyncio.run(many())
    assert [a.model_version for a in answers] == [svc.version] * 6
    data = champion_run.data
    expected = data.model.predict_proba(data.holdout[data.schema.features].iloc[:6])[:, 1]
    got = [a.predictions[0].probabilities["1"] for a in answers]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    log = read_prediction_log(tmp_path / "log")
    assert sorted(log["request_id"]) == sorted(a.request_id for a in answers)


def test_timeout_middleware_cancels_its_timer(spec_file, monkeypatch) -> None:
    """BentoML's TimeoutMiddleware, as flowship.service patches it: the per-request timer is
    cancelled when the request ends (upstream keeps it, and with it the request's objects,
    for the whole timeout), and a request slower than the timeout still gets a 504."""
    monkeypatch.setenv("FLOWSHIP_BENTO_SPEC", str(spec_file))
    importlib.import_module("flowship.service")
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    from flowship.bentoml_patches import patch_timeout_middleware

    assert patch_timeout_middleware()  # what each worker's Flowship.__init__ does

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def quick(scope, receive, send_) -> None:
        await send_({"type": "http.response.start", "status": 200, "headers": []})
        await send_({"type": "http.response.body", "body": b"ok"})

    async def slow(scope, receive, send_) -> None:
        await asyncio.sleep(5)

    async def run(app, timeout: float) -> list:
        loop = asyncio.get_running_loop()
        await TimeoutMiddleware(app, timeout=timeout)({"type": "http"}, None, send)
        return [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    assert asyncio.run(run(quick, timeout=30)) == []
    assert sent[0]["status"] == 200
    sent.clear()
    asyncio.run(run(slow, timeout=0.05))
    assert sent[0]["status"] == 504


def test_an_unwritable_log_costs_the_log_not_the_answer(champion_run, bento_tag) -> None:
    """A log folder that cannot be written: /predict still answers 200 (never a 500 with
    healthy probes), and the rows it could not log are counted in /metrics."""
    from flowship.processes import served_bento
    from tests.helpers import free_port

    env = {"FLOWSHIP_PREDICTION_LOG_DIR": "/dev/null/predictions"}  # not a folder, even for root
    with served_bento(bento_tag, "127.0.0.1", free_port(), env) as url:
        rows = rows_of(champion_run, 3)
        for _ in range(2):
            answer = httpx.post(f"{url}/predict", json={"rows": rows}, headers=AUTH, timeout=30)
            assert answer.status_code == 200, answer.text
        assert httpx.get(f"{url}/readyz", headers=AUTH, timeout=30).status_code == 200
        metrics = httpx.get(f"{url}/metrics", headers=AUTH, timeout=30).text
    lost = [
        line
        for line in metrics.splitlines()
        if line.startswith("flowship_prediction_log_lost_rows")
    ]
    assert lost and float(lost[0].split()[-1]) >= 6, lost


def test_an_oversized_body_is_413_and_a_long_string_400(served) -> None:
    """The body limit ([serving] max_body_mb) refuses before parsing; a text value longer
    than [serving] max_string_length is a 400 naming the field; neither is logged."""
    before = len(read_prediction_log(served.log_dir))
    huge = b'{"rows": [' + b'{"region": "' + b"x" * (9 * 1024 * 1024) + b'"}]}'
    answer = post(served, huge, raw=True)
    assert answer.status_code == 413 and "max_body_mb" in answer.text
    row = {**rows_of(served.run, 1)[0], "region": "x" * 1001}
    long = post(served, {"rows": [row]})
    assert long.status_code == 400 and "region" in long.text
    assert len(read_prediction_log(served.log_dir)) == before


def test_batch_scoring_equals_predict_bit_for_bit(served, champion_run, tmp_path) -> None:
    """ScoreFlow on a few thousand rows (missing values, unseen categories) gives, bit for
    bit, the probabilities /predict of the served Bento answers for the same rows, and the
    champion pipeline's own predict_proba. Requests of 48 rows: BLAS (OpenBLAS) computes the
    last rows of a matrix that do not fill a block of 4 with other code, whose last bit can
    differ (with 50-row requests, rows 48 and 49 of each differ by 2e-16), so rows are
    compared where neither side computes them so (ScoreFlow pads its calls to blocks)."""
    from metaflow import Runner, get_metadata

    from flowship.sample_data import generate_churn
    from tests.helpers import REPO, small_config, write_config

    data = champion_run.data
    features = data.schema.features
    frame = generate_churn(3072, seed=31)[["customer_id", *features]]
    frame.loc[frame.index[::50], "region"] = "atlantis"
    frame.to_parquet(tmp_path / "batch.parquet", index=False)
    root = get_metadata().split("@", 1)[1]  # the session champion's datastore
    env = {"METAFLOW_DATASTORE_SYSROOT_LOCAL": root, "USERNAME": os.environ["USERNAME"]}
    config = write_config(tmp_path / "project.toml", small_config())
    runner = Runner(
        str(REPO / "flows" / "score_flow.py"), show_output=False, env=env, cwd=root,
        config=[("config", str(config))],
    )  # fmt: skip
    with runner.run(
        input=str(tmp_path / "batch.parquet"),
        output=str(tmp_path / "scores"),
        model=champion_run.pathspec,
    ) as result:
        assert result.status == "successful", result.stdout + result.stderr
    batch = pd.read_parquet(tmp_path / "scores")
    assert batch["customer_id"].tolist() == frame["customer_id"].tolist()
    classes = [str(c) for c in data.schema.classes]
    got = batch[[f"proba_{c}" for c in classes]].to_numpy()

    records = frame[features].astype(object).to_dict(orient="records")
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in records
    ]
    answered = []
    for start in range(0, len(rows), 48):
        response = post(served, {"rows": rows[start : start + 48]})
        assert response.status_code == 200, response.text
        answers = response.json()["predictions"]
        answered += [[p["probabilities"][c] for c in classes] for p in answers]
    assert np.array_equal(got, np.array(answered))
    assert np.array_equal(got, data.model.predict_proba(frame[features]))
    assert batch["prediction"].tolist() == [data.schema.classes[i] for i in got.argmax(axis=1)]
