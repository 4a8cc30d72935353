"""Flow tests run whole flows through metaflow.Runner in a temporary datastore."""

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def datastore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh local datastore root; the test process's client reads from it too."""
    from metaflow import metadata

    root = tmp_path_factory.mktemp("mf")
    (root / ".metaflow").mkdir()
    metadata(f"local@{root}")
    return root


@pytest.fixture(autouse=True)
def _cwd(datastore: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(datastore)
