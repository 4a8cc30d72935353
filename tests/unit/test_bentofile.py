"""The Bento's build file agrees with the exact pins and the source tree it packages."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

SRC = REPO / "src"
GENERATED = "flowship/bento_model.json"  # written by `make bento`, not in the source tree


def _normalise(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    """`name==version` lines as {normalised name: version}; comments and blanks skipped."""
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{line!r} is not an exact pin (name==version)"
            pins[_normalise(name.strip())] = version.strip()
    return pins


@pytest.fixture(scope="module")
def bentofile() -> dict[str, Any]:
    return yaml.safe_load((REPO / "bentofile.yaml").read_text())


@pytest.fixture(scope="module")
def constraints() -> dict[str, str]:
    return _pins((REPO / "constraints.txt").read_text().splitlines())


def test_normalise_matches_pip_names() -> None:
    """Case, dots and underscores do not make two names differ."""
    assert _normalise("scikit_learn") == _normalise("Scikit-Learn") == "scikit-learn"
    assert _normalise("ruamel.yaml") == "ruamel-yaml"


def test_packages_pinned_as_in_constraints(
    bentofile: dict[str, Any], constraints: dict[str, str]
) -> None:
    """Every package the Bento installs is pinned to the version constraints.txt resolved."""
    packages = _pins(bentofile["python"]["packages"])
    assert {"bentoml", "scikit-learn", "pandas", "numpy", "pydantic"} <= set(packages)
    mismatched = {
        name: (version, constraints.get(name))
        for name, version in packages.items()
        if constraints.get(name) != version
    }
    assert mismatched == {}, "bentofile pin vs constraints.txt (None: not in constraints)"


def test_packages_are_not_locked(bentofile: dict[str, Any]) -> None:
    """Locking would resolve against the public index at build time; the pins are exact."""
    assert bentofile["python"]["lock_packages"] is False


def test_included_files_exist(bentofile: dict[str, Any]) -> None:
    """Every include pattern matches a file under src/, except the generated model spec."""
    include = bentofile["include"]
    assert GENERATED in include, "the service reads the model spec from inside the Bento"
    unmatched = [
        pattern
        for pattern in include
        if pattern != GENERATED and not any(p.is_file() for p in SRC.glob(pattern))
    ]
    assert unmatched == []


def _flowship_imports(path: Path) -> set[str]:
    """`flowship/<module>.py` paths that a module imports from the package."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        modules |= {f"{n.replace('.', '/')}.py" for n in names if n.startswith("flowship.")}
    return modules


def test_included_modules_bring_their_imports(bentofile: dict[str, Any]) -> None:
    """Whatever an included module imports from flowship is included too."""
    include = set(bentofile["include"])
    needed = set()
    for pattern in include - {GENERATED}:
        for path in SRC.glob(pattern):
            if path.suffix == ".py":
                needed |= _flowship_imports(path)
    assert "flowship/predict.py" in needed
    assert sorted(needed - include) == []


def test_service_and_python_version(bentofile: dict[str, Any]) -> None:
    """The Bento serves the Flowship class on the Python the pins were resolved for."""
    assert bentofile["service"] == "flowship.service:Flowship"
    assert bentofile["docker"]["base_image"] == "python:3.11-slim"


def test_dockerfile_installs_no_system_packages(
    bentofile: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BentoML renders the Bento's Dockerfile from the base image with no apt-get layer
    (build-essential, git, gnupg2 were 588 MB), and installs the pinned packages."""
    from _bentoml_sdk.images import populate_image_from_build_config
    from bentoml._internal.bento.build_config import BentoBuildConfig
    from bentoml._internal.container.generate import generate_containerfile

    with (REPO / "bentofile.yaml").open() as stream:
        config = BentoBuildConfig.from_yaml(stream).with_defaults()
    monkeypatch.chdir(SRC)  # `bentoml build` runs in its context, where the template is
    assert bentofile["docker"]["dockerfile_template"] in bentofile["include"]
    # None: the classic (v1) layout, whose Dockerfile adds no system packages
    assert populate_image_from_build_config(None, config, str(SRC)) is None
    dockerfile = generate_containerfile(
        config.docker, str(SRC), conda=config.conda, bento_fs=tmp_path
    )
    assert "FROM python:3.11-slim " in dockerfile
    assert "apt-get" not in dockerfile and "build-essential" not in dockerfile
    assert "env/python/install.sh" in dockerfile
