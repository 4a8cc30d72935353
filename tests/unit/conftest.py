"""Shared unit-test data: a few hundred generated churn rows, validated and split once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from flowship.config import Settings, load_settings
from flowship.data import infer_schema, split_dataset, validate_dataset
from flowship.sample_data import generate_churn
from flowship.schema import Schema
from tests.helpers import small_config


@dataclass(frozen=True)
class Prepared:
    """A validated table split like TrainFlow splits it, with the settings that made it."""

    settings: Settings
    schema: Schema
    frame: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame


def prepare(frame: pd.DataFrame, settings: Settings) -> Prepared:
    """Infer, validate and split `frame` the way the training flow does."""
    schema = infer_schema(frame, settings.data)
    clean = validate_dataset(frame, schema)
    train, holdout = split_dataset(clean, schema, settings.data.test_size, settings.data.split_seed)
    return Prepared(settings.for_task(schema.task), schema, clean, train, holdout)


@pytest.fixture(scope="session")
def churn() -> Prepared:
    """600 baseline churn rows (binary 0/1 target) with SMALL_CONFIG's settings."""
    settings = load_settings(small_config())
    return prepare(generate_churn(600, seed=3), settings)


@pytest.fixture
def empty_datastore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh local Metaflow datastore with no runs, as the working directory."""
    from metaflow import get_metadata, metadata

    (tmp_path / ".metaflow").mkdir()
    monkeypatch.chdir(tmp_path)
    previous = get_metadata()
    assert metadata(f"local@{tmp_path}") == f"local@{tmp_path}"
    yield tmp_path
    metadata(previous)
