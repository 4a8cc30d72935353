"""Packaging: a run's model into the BentoML model store with its lineage, and the Bento built
from that exact model tag (never `:latest`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from metaflow import Run

from flowship.auth import KEYS_ENV, key_line, new_key
from flowship.config import ServingSettings
from flowship.errors import ServingError
from flowship.estimators import distribution_of
from flowship.registry import check_challenger, released_artifacts
from flowship.runs import model_artifacts

SPEC_FILE = "flowship/bento_model.json"  # written into the Bento beside the service


def export_model(run: Run, model_name: str, explain_rows: int = 50) -> tuple[str, dict[str, Any]]:
    """Save a run's pipeline into the BentoML model store with its lineage.

    Labels (searchable with `bentoml models list`) and metadata carry the run pathspec, git sha,
    data fingerprint, verdict id, holdout metrics, the contract, the input schema, the class
    labels, and the distribution that provides the estimator when it is not scikit-learn's
    (`requirements`: the Bento installs it). `explain_rows` training rows go with it (custom
    object `explain_background`, a list of records): `/explain` measures contributions
    against them.

    Raises:
        RegistryError: the run never passed its gate.
    """
    import bentoml

    from flowship.evaluate import records_of
    from flowship.explain import background_sample

    data = released_artifacts(run, "export the champion or a passed run")
    verdict = data.verdict
    lineage = data.lineage
    metadata = {
        "run": run.pathspec,
        "candidate": data.best_candidate,
        "git_sha": lineage["git_sha"],
        "git_dirty": lineage.get("git_dirty"),
        "config_hash": lineage["config_hash"],
        "data_fingerprint": data.data_fingerprint,
        "verdict": {"id": verdict.id, "decision": verdict.decision, **verdict.summary()},
        "metrics": {k: float(v) for k, v in data.metrics.items()},
        "task": data.schema.task,
        "classes": [str(c) for c in data.schema.classes],
        "contract": data.schema.contract(),
        "schema": data.schema.model_dump(mode="json"),
        "packages": lineage.get("packages", {}),
        "requirements": [r for r in [distribution_of(data.model.named_steps["model"])] if r],
    }
    labels = {
        "run_id": str(run.id),
        "git_sha": str(lineage["git_sha"])[:12],
        "data": data.data_fingerprint,
        "verdict": verdict.id,
    }
    background = getattr(data, "explain_background", None)  # the rows the card was measured on
    if background is None or len(background) < explain_rows:
        seed = data.settings.training.seed
        background = background_sample(data.train_data, data.schema, explain_rows, seed)
    # as plain records: a frame would pickle pandas' Arrow-backed strings, and the Bento has
    # no pyarrow to read them back
    background = records_of(background.head(explain_rows), data.schema)
    model = bentoml.sklearn.save_model(
        model_name,
        data.model,
        labels=labels,
        metadata=_without_none(metadata),
        custom_objects={"explain_background": background},
    )
    return str(model.tag), metadata


def _without_none(value: Any) -> Any:
    """BentoML metadata refuses None: drop such keys (an unset id column, an unknown dirty flag)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value if v is not None]
    return value


# What only `/explain` needs: left out of a Bento built with `[serving] explain = false`
EXPLAIN_PACKAGES = ("shap", "numba", "llvmlite", "slicer")


def bento_spec(
    model_tag: str,
    metadata: dict[str, Any],
    serving: ServingSettings,
    challenger: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What the service reads at start-up (`flowship/bento_model.json` inside the Bento): the
    model tag, its input schema and the `[serving]` settings, the challenger's model tag and
    run when there is one; and what the Bento must install beyond `bentofile.yaml`'s packages
    (the estimators' distributions)."""
    requirements = list(metadata.get("requirements", []))
    spec: dict[str, Any] = {
        "model_tag": model_tag,
        "schema": metadata["schema"],
        "serving": serving.model_dump(mode="json"),
    }
    if challenger is not None:
        tag, theirs = challenger
        spec["challenger"] = {"model_tag": tag, "run": theirs["run"]}
        requirements += [r for r in theirs.get("requirements", []) if r not in requirements]
    spec["requirements"] = requirements
    return spec


def build_bento(spec: dict[str, Any], repo: Path, workdir: Path) -> str:
    """Build the Bento for an exported model; returns the Bento tag.

    The files `bentofile.yaml` includes are staged with the model spec in `workdir/src`, so
    the build never writes into the repository and `BENTOML_HOME` stays outside the context.
    The spec's `requirements` (e.g. `lightgbm==4.7.0`) join the bentofile's pinned packages.

    Raises:
        ServingError: `bentoml build` failed (its output is in the message).
    """
    import yaml

    bentofile = yaml.safe_load((repo / "bentofile.yaml").read_text())
    src = workdir / "src"
    for pattern in bentofile["include"]:
        for path in (repo / "src").glob(pattern):
            target = src / path.relative_to(repo / "src")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    (src / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    packages = bentofile["python"]["packages"]
    if not spec["serving"].get("explain", True):
        packages[:] = [p for p in packages if p.split("==")[0] not in EXPLAIN_PACKAGES]
    packages += [r for r in spec.get("requirements", []) if r not in packages]
    (workdir / "bentofile.yaml").write_text(yaml.safe_dump(bentofile, sort_keys=False))
    bentoml = Path(sys.executable).with_name("bentoml")
    cmd = [str(bentoml), "build", "-f", str(workdir / "bentofile.yaml"), "-o", "tag", str(src)]
    # `bentoml build` imports the service, which refuses to load without API keys: give the
    # build a throwaway one (the Bento keeps no environment; serving needs real keys)
    env = {**os.environ, KEYS_ENV: key_line("build", new_key())}
    # cwd = the build context: BentoML resolves docker.dockerfile_template only inside the cwd
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    if done.returncode != 0:
        raise ServingError(f"bentoml build failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def package_run(
    run: Run,
    model_name: str,
    serving: ServingSettings,
    repo: Path,
    challenger: Run | None = None,
) -> tuple[str, str]:
    """Export a run's model (and a challenger's) and build the Bento; returns (model tag,
    Bento tag).

    Raises:
        RegistryError: a run never passed its gate, or the challenger's contract differs.
        ServingError: `[serving] challenger_key` is not a request column, or the build failed.
    """
    if challenger is not None:  # refused before anything is exported
        check_challenger(run, challenger)
        schema = model_artifacts(run).schema
        keys = [schema.id_column, *schema.numeric, *schema.categorical]
        if serving.challenger_key and serving.challenger_key not in keys:
            raise ServingError(
                f"[serving] challenger_key = {serving.challenger_key!r} is not a column of the "
                "requests; use the id column or a numeric or categorical feature: "
                + ", ".join(k for k in keys if k)
            )
    model_tag, metadata = export_model(run, model_name, serving.explain_background_rows)
    second = None
    if challenger is not None:
        second = export_model(challenger, model_name, serving.explain_background_rows)
    with tempfile.TemporaryDirectory(prefix="flowship-bento-") as tmp:
        spec = bento_spec(model_tag, metadata, serving, second)
        bento_tag = build_bento(spec, repo, Path(tmp))
    return model_tag, bento_tag
