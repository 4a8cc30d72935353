"""The summary `make argo` prints of a compiled WorkflowTemplate."""

from __future__ import annotations

import json

from flowship.scale import describe_template


def _container(name: str, cpu: str, memory: str) -> dict:
    return {"name": name, "container": {"resources": {"requests": {"cpu": cpu, "memory": memory}}}}


def test_describe_template_in_dag_order_with_schedule_and_triggers() -> None:
    """Steps in the flow's order (foreach bodies included, '_' as Argo's '-'), hooks and the
    DAG template left out, then the schedule and the triggering events."""
    graph = {"graph_structure": ["start", "load_data", [["train"]], "end"]}
    template = {
        "metadata": {
            "name": "churn.prod.trainflow",
            "annotations": {
                "metaflow/dag": json.dumps(graph),
                "metaflow/cron": json.dumps({"schedule": "0 3 * * 1", "tz": ""}),
                "metaflow/triggers": json.dumps([{"name": "churn.retrain", "type": "event"}]),
            },
        },
        "spec": {
            "templates": [
                _container("end", "1", "4096M"),
                _container("train", "2.0", "8192.0M"),
                {"name": "TrainFlow", "dag": {"tasks": []}},
                _container("error-msg-capture-hook", "200m", "100Mi"),
                _container("load-data", "4.0", "16384.0M"),
                _container("start", "1", "4096M"),
            ]
        },
    }
    assert describe_template(template) == [
        "churn.prod.trainflow",
        "  step start            cpu 1     memory 4096M",
        "  step load-data        cpu 4.0   memory 16384.0M",
        "  step train            cpu 2.0   memory 8192.0M",
        "  step end              cpu 1     memory 4096M",
        "  schedule 0 3 * * 1 (UTC)",
        "  triggered by events: churn.retrain",
    ]
    del template["metadata"]["annotations"]["metaflow/cron"]
    del template["metadata"]["annotations"]["metaflow/triggers"]
    assert describe_template(template)[-2:] == [
        "  schedule none",
        "  triggered by events: none",
    ]
