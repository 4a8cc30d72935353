"""Settings: defaults, the repo's own config, and refusals that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowship.config import (
    ConfigError,
    Settings,
    load_settings,
    parse_config,
    read_settings,
)
from flowship.estimators import BUILTIN as ESTIMATORS
from flowship.tasks import RANKING_METRICS as METRICS
from tests.helpers import REPO, SMALL_CONFIG, small_config, write_config


def test_empty_config_gives_the_defaults() -> None:
    """An empty configuration gives the documented defaults."""
    settings = load_settings({})
    assert settings.project.name == "churn"
    assert settings.data.source == "sample:churn?rows=20000&seed=7"
    assert settings.data.target == "churned"
    assert settings.data.id_column is None
    assert settings.data.numeric_features is None
    assert settings.data.categorical_features is None
    assert settings.data.positive_class is None
    assert settings.data.test_size == 0.2
    assert settings.data.split_seed == 42
    assert settings.data.task == "auto"
    assert (settings.training.metric, settings.training.candidates) == ("", None)
    assert settings.gate.min_metrics is None
    assert settings.training.seed == 42
    assert settings.training.validation_size == 0.2
    assert settings.training.importance_rows == 5000
    assert settings == Settings()


@pytest.mark.parametrize(
    ("task", "metric", "minimums", "candidates"),
    [
        ("binary", "roc_auc", {"roc_auc": 0.75}, ["logistic_regression", "hist_gradient_boosting"]),
        ("multiclass", "f1", {"roc_auc": 0.75}, ["logistic_regression", "hist_gradient_boosting"]),
        ("regression", "rmse", {"r2": 0.0}, ["ridge", "hist_gradient_boosting"]),
    ],
)
def test_task_defaults_fill_what_the_config_leaves_out(
    task: str, metric: str, minimums: dict, candidates: list[str]
) -> None:
    """The metric, the gate's minimums and the candidates default by task."""
    resolved = load_settings({}).for_task(task)
    assert resolved.training.metric == metric
    assert resolved.gate.min_metrics == minimums
    assert [c.estimator for c in resolved.training.candidates or []] == candidates


def test_configured_values_are_kept_for_the_task() -> None:
    resolved = load_settings(small_config()).for_task("binary")
    assert resolved.training.metric == "roc_auc"
    assert resolved.gate.min_metrics == {"roc_auc": 0.7}


def test_a_metric_of_another_task_is_refused_once_the_task_is_known() -> None:
    """With an explicit task a wrong metric fails when the config is read; with auto, when
    the data has chosen the task."""
    with pytest.raises(ConfigError, match=r"'training.metric' 'rmse' is not a metric for a binary"):
        load_settings(small_config(data={"task": "binary"}, training={"metric": "rmse"}))
    settings = load_settings(small_config(training={"metric": "rmse"}))
    with pytest.raises(
        ConfigError, match=r"'gate.min_metrics' has \['roc_auc'\], which a regression"
    ):
        settings.for_task("regression")


def test_a_plugin_estimator_path_is_accepted_and_a_bad_name_is_not() -> None:
    candidates = [{"name": "knn", "estimator": "sklearn.neighbors:KNeighborsClassifier"}]
    settings = load_settings(small_config(training={"candidates": candidates}))
    assert settings.training.candidates and settings.training.candidates[0].estimator.endswith(
        "Classifier"
    )
    with pytest.raises(ConfigError, match=r"or 'package.module:Class' for your own estimator"):
        load_settings(small_config(training={"candidates": [{"name": "x", "estimator": "svm"}]}))


def test_repo_config_parses() -> None:
    """The repo's config/project.toml reads into settings with its three candidates."""
    settings = read_settings(REPO / "config" / "project.toml")
    assert settings.project.name == "churn"
    assert settings.data.id_column == "customer_id"
    assert settings.data.categorical_features == [
        "contract",
        "internet_service",
        "payment_method",
        "region",
    ]
    assert [c.name for c in settings.training.candidates] == ["logreg", "hgb", "forest"]
    assert settings.training.candidates[1].params == {
        "learning_rate": [0.05, 0.1],
        "max_leaf_nodes": [15, 31],
    }


def test_load_settings_takes_a_parsed_mapping() -> None:
    """SMALL_CONFIG loads with its values, nested candidate lists included."""
    settings = load_settings(SMALL_CONFIG)
    assert settings.data.source == "sample:churn?rows=600&seed=3"
    assert settings.data.test_size == 0.25
    assert settings.training.candidates[1].params == {"max_iter": [40], "max_leaf_nodes": [7, 15]}


def test_unknown_key_lists_the_allowed_keys() -> None:
    """An unknown key is refused, naming it and the keys its section allows."""
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'data\.colour'; allowed keys here: source, target, id_column, ",
    ):
        load_settings(small_config(data={"colour": "red"}))


def test_unknown_top_level_section_lists_the_sections() -> None:
    """An unknown section is refused, listing project, data and training."""
    with pytest.raises(
        ConfigError, match=r"unknown key 'colour'; allowed keys here: project, data, training"
    ):
        load_settings({**SMALL_CONFIG, "colour": {}})


def test_unknown_key_inside_a_candidate_lists_candidate_keys() -> None:
    """A misspelt candidate key names its position and the keys a candidate has."""
    candidates = [{"name": "forest", "estimator": "random_forest", "param": {}}]
    with pytest.raises(
        ConfigError,
        match=r"'training\.candidates\.0\.param'; allowed keys here: name, estimator, params",
    ):
        load_settings(small_config(training={"candidates": candidates}))


def test_unknown_estimator_lists_the_estimators() -> None:
    """An unknown estimator names the candidate's key and every allowed estimator."""
    candidates = [{"name": "svm", "estimator": "svm"}]
    with pytest.raises(ConfigError, match=r"'training\.candidates\.0\.estimator' = 'svm'") as info:
        load_settings(small_config(training={"candidates": candidates}))
    for estimator in ESTIMATORS:
        assert f"'{estimator}'" in str(info.value)


def test_empty_candidates_are_refused() -> None:
    """An empty candidate list asks for at least one candidate and lists the estimators."""
    with pytest.raises(
        ConfigError,
        match=r"'training\.candidates' is empty; add at least one \[\[training\.candidates\]\] "
        r"with an estimator from logistic_regression, random_forest",
    ):
        load_settings(small_config(training={"candidates": []}))


def test_invalid_metric_lists_the_metrics() -> None:
    """A regression metric is refused for a binary task, listing the classification metrics."""
    with pytest.raises(
        ConfigError,
        match=r"'training\.metric' 'rmse' is not a metric.*allowed: " + ", ".join(METRICS[:4]),
    ):
        load_settings(small_config(training={"metric": "rmse"}, data={"task": "binary"}))


def test_duplicate_candidate_names_are_refused() -> None:
    """Two candidates with one name are refused, naming the repeated name."""
    candidates = [
        {"name": "trees", "estimator": "random_forest"},
        {"name": "trees", "estimator": "extra_trees"},
    ]
    with pytest.raises(
        ConfigError,
        match=r"'training\.candidates' candidate names must be unique; repeated: \['trees'\]",
    ):
        load_settings(small_config(training={"candidates": candidates}))


def test_empty_parameter_grid_is_refused() -> None:
    """A parameter with an empty list of values is refused, naming the parameter."""
    candidates = [{"name": "forest", "estimator": "random_forest", "params": {"max_depth": []}}]
    with pytest.raises(
        ConfigError, match=r"params \['max_depth'\] have an empty list; give at least one value"
    ):
        load_settings(small_config(training={"candidates": candidates}))


def test_feature_listed_twice_is_refused() -> None:
    """A feature list naming one column twice is refused with its key."""
    with pytest.raises(ConfigError, match=r"'data\.numeric_features' lists a column twice"):
        load_settings(small_config(data={"numeric_features": ["age", "age"]}))


def test_every_invalid_key_is_reported_at_once() -> None:
    """Several mistakes are reported together, one line each."""
    raw = small_config(data={"test_size": 1.5}, training={"metric": "nope"})
    with pytest.raises(ConfigError) as info:
        load_settings(raw)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert len(lines) == 3
    assert "'data.test_size' Input should be less than 1" in str(info.value)


def test_bad_toml_is_a_config_error() -> None:
    """Text that is not TOML is refused as such."""
    with pytest.raises(ConfigError, match="the configuration is not valid TOML"):
        parse_config("[data\nsource = ")


def test_parse_config_returns_plain_mapping() -> None:
    """Valid TOML parses into nested dicts and lists, unvalidated but for [scale], which is
    completed with its defaults (the flows' decorators read it at definition time)."""
    parsed = parse_config('[data]\ntarget = "plan"\n[[training.candidates]]\nname = "x"\n')
    assert parsed == {
        "data": {"target": "plan"},
        "training": {"candidates": [{"name": "x"}]},
        "scale": {
            "data_steps": {"cpu": 4, "memory_mb": 16384},
            "candidate_steps": {"cpu": 2, "memory_mb": 8192},
            "score_steps": {"cpu": 1, "memory_mb": 4096},
            "train_schedule": "0 3 * * 1",
            "monitor_schedule": "0 6 * * *",
            "score_schedule": "",
            "retrain_event": "churn.retrain",
        },
    }


def test_scale_section_overrides_and_event_name_follow_the_project() -> None:
    text = (
        '[project]\nname = "fraud"\n[scale]\ntrain_schedule = ""\n'
        "candidate_steps = { cpu = 8, memory_mb = 32768 }\n"
    )
    scale = load_settings(parse_config(text)).scale
    assert scale.retrain_event == "fraud.retrain"
    assert scale.train_schedule == ""
    assert (scale.candidate_steps.cpu, scale.candidate_steps.memory_mb) == (8, 32768)
    assert scale.data_steps.cpu == 4


def test_invalid_scale_is_refused_when_parsed() -> None:
    """Bad [scale] values fail at parse time, naming the keys and the fix."""
    text = (
        '[scale]\ndata_steps = { cpu = 0 }\nmonitor_schedule = "daily"\nretrain_event = "a b"\n'
        'score_schedule = "nightly"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert "'scale.score_schedule' is 'nightly': use a 5-field cron" in message
    assert "'scale.data_steps.cpu' Input should be greater than or equal to 1" in message
    assert "'scale.monitor_schedule' is 'daily': use a 5-field cron" in message
    assert "'scale.retrain_event' is 'a b'" in message


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    """A missing configuration file names the path and the CONFIG= fix."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=rf"no configuration file at {missing}; pass CONFIG="):
        read_settings(missing)


def test_read_settings_reads_a_written_file(tmp_path: Path) -> None:
    """A TOML file written from a mapping reads back into the same settings."""
    path = write_config(tmp_path / "project.toml", small_config(data={"split_seed": 9}))
    assert read_settings(path) == load_settings(small_config(data={"split_seed": 9}))


def test_fingerprint_is_stable_and_follows_the_settings() -> None:
    """Equal settings share a fingerprint; changing one value changes it."""
    first = load_settings(SMALL_CONFIG).fingerprint()
    assert len(first) == 16
    assert load_settings(small_config()).fingerprint() == first
    assert load_settings(small_config(data={"split_seed": 2})).fingerprint() != first


def test_score_section_defaults_and_limits() -> None:
    """[score]: a million rows per shard, 1% refused rows at most, workers from the cores;
    out-of-range values are refused naming the key."""
    score = load_settings({}).score
    assert (score.input, score.output, score.shard_rows) == ("", "", 1_000_000)
    assert (score.max_reject_share, score.max_workers) == (0.01, None)
    with pytest.raises(ConfigError) as caught:
        load_settings({"score": {"shard_rows": 0, "max_reject_share": 2, "shards": 3}})
    message = str(caught.value)
    assert "'score.shard_rows' Input should be greater than or equal to 1" in message
    assert "'score.max_reject_share' Input should be less than or equal to 1" in message
    assert "unknown key 'score.shards'; allowed keys here: input, output, shard_rows" in message
