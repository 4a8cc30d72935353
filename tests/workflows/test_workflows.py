"""The GitHub workflows are valid, pass zizmor, follow the house rules, call real make targets."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

WORKFLOW_DIR = REPO / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
BIN = Path(sys.executable).parent  # the venv's tools, whoever put the venv on PATH or not
ZIZMOR_FLAGS = ["--offline", "--no-progress", "--color", "never", "--min-severity", "medium"]
TELEMETRY_AND_USER = ("USERNAME", "BENTOML_DO_NOT_TRACK", "DO_NOT_TRACK")
PINNED = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
# make's options that take the next word as their argument (so it is not a target)
MAKE_OPTIONS_WITH_ARGUMENT = {"-C", "-f", "-I", "-j", "-l", "-o", "-W", "--file", "--directory"}
SHELL_SEPARATORS = re.compile(r"&&|\|\||[;|&()`]|\$\(")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # ${{ github.sha }}: one word once expanded
REDIRECTION = re.compile(r"""\d*(?:>>?|<)&?\s*(?:"[^"]*"|'[^']*'|[^\s;&|()]+)""")
SHELL_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "exec"}


def _workflow(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _jobs(path: Path) -> dict[str, dict[str, Any]]:
    jobs = _workflow(path).get("jobs")
    assert jobs, f"{path.name} has no jobs"
    return jobs


def _calls_reusable_workflow(job: dict[str, Any]) -> bool:
    """A job that `uses:` a workflow runs no steps and takes neither timeout nor env."""
    return "uses" in job


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = BIN / tool
    assert executable.exists(), f"{executable} is missing: run `make install`"
    return subprocess.run(
        [str(executable), *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def make_targets(makefile: Path) -> set[str]:
    """The targets `makefile` and the files it includes (ci.mk) define, read from make's
    database (`make -p -q`: nothing runs).

    A name make merely knows of (a prerequisite file, a `.PHONY` entry without a rule) has
    neither prerequisites nor a recipe, and is not a target.
    """
    database = subprocess.run(
        ["make", "--no-print-directory", "-p", "-q", "-r", "-R", "-f", str(makefile)],
        cwd=makefile.parent,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    files = database.partition("\n# Files\n")[2].partition("\n# Finished Make data base")[0]
    assert files, f"`make -p` printed no database for {makefile}"
    targets = set()
    for entry in files.split("\n\n"):
        lines = [line for line in entry.splitlines() if line]
        if not lines or lines[0] == "# Not a target:":
            continue
        rule = re.match(r"^([^#\s:=][^:=]*):(?!=)(.*)$", lines[0])
        has_recipe = any(line.startswith("\t") for line in lines[1:])
        if rule and (rule.group(2).strip(" :") or has_recipe):
            targets.update(rule.group(1).split())
    # .PHONY, .SUFFIXES and the like are directives to make, not targets to call
    return {target for target in targets if not re.fullmatch(r"\.[A-Z_]+", target)}


def make_calls(script: str) -> list[list[str]]:
    """The targets of every `make` command in a shell script, one list per command.

    A command without targets (the default goal) gives an empty list; `VAR=value` words,
    make's options and redirections are not targets.
    """
    calls = []
    for line in script.replace("\\\n", " ").splitlines():
        line = EXPRESSION.sub("EXPRESSION", line.split(" #", 1)[0])
        line = REDIRECTION.sub(" ", line)
        for segment in SHELL_SEPARATORS.split(line):
            try:
                words = shlex.split(segment)
            except ValueError:  # a quote opened in another segment
                words = segment.split()
            while words and (words[0] in SHELL_KEYWORDS or re.match(r"^\w+=", words[0])):
                words = words[1:]
            if not words or Path(words[0]).name != "make":
                continue
            targets: list[str] = []
            skip_next = False
            for word in words[1:]:
                if skip_next:
                    skip_next = False
                elif word in MAKE_OPTIONS_WITH_ARGUMENT:
                    skip_next = True
                elif not word.startswith("-") and "=" not in word:
                    targets.append(word)
            calls.append(targets)
    return calls


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps") or []


def test_workflows_found() -> None:
    """The workflows the project documents are all there."""
    assert {path.name for path in WORKFLOWS} >= {"ci.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_matches_github_schema(path: Path) -> None:
    """GitHub's workflow schema (vendored in check-jsonschema, so offline) accepts the file."""
    result = _run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_has_no_zizmor_findings(path: Path) -> None:
    """zizmor finds nothing of medium severity or more (offline audits)."""
    result = _run("zizmor", *ZIZMOR_FLAGS, str(path))
    assert result.returncode == 0, f"zizmor {' '.join(ZIZMOR_FLAGS)} {path.name}:\n" + (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_jobs_have_timeouts_and_permissions(path: Path) -> None:
    """No job runs for GitHub's 6-hour default or with the token's default permissions."""
    problems = []
    for name, job in _jobs(path).items():
        if "permissions" not in job:
            problems.append(f"job {name!r} has no `permissions:`")
        # GitHub refuses timeout-minutes on a job that calls a reusable workflow; its jobs set it.
        if not _calls_reusable_workflow(job) and "timeout-minutes" not in job:
            problems.append(f"job {name!r} has no `timeout-minutes:`")
    assert not problems, f"{path.name}: " + "; ".join(problems)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_actions_pinned_to_commits(path: Path) -> None:
    """Every action and reusable workflow from another repo is pinned to a 40-hex commit SHA."""
    unpinned = []
    for name, job in _jobs(path).items():
        uses = [job["uses"]] if _calls_reusable_workflow(job) else []
        uses += [step["uses"] for step in _steps(job) if "uses" in step]
        # ./local actions and workflows come from the same commit as the workflow itself
        unpinned += [
            f"{name}: {ref}" for ref in uses if not ref.startswith("./") and not PINNED.match(ref)
        ]
    assert not unpinned, f"{path.name} uses unpinned refs (pin to a commit SHA): {unpinned}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_jobs_set_user_and_telemetry_env(path: Path) -> None:
    """Metaflow gets a user and telemetry is off in every job that runs steps."""
    workflow_env = _workflow(path).get("env") or {}
    missing = {}
    for name, job in _jobs(path).items():
        if _calls_reusable_workflow(job):
            continue  # the called workflow sets its own env: a caller's does not reach it
        env = {**workflow_env, **(job.get("env") or {})}
        if absent := [var for var in TELEMETRY_AND_USER if var not in env]:
            missing[name] = absent
    assert not missing, f"{path.name}: jobs without {TELEMETRY_AND_USER}: {missing}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_calls_only_existing_make_targets(path: Path) -> None:
    """Every `make <target>` a `run:` step types exists in the Makefile or ci.mk (nothing runs)."""
    targets = make_targets(REPO / "Makefile")
    missing = []
    for name, job in _jobs(path).items():
        for step in _steps(job):
            for call in make_calls(step.get("run", "")):
                missing += [f"{name}: make {target}" for target in call if target not in targets]
    assert not missing, f"{path.name} calls make targets the Makefile lacks: {missing}"


def test_make_calls_reads_targets_not_variables_or_redirects() -> None:
    """Assignments, options and redirections around `make` are not taken for targets."""
    script = (
        'make changed-model BASE=${{ github.sha }} >> "$GITHUB_OUTPUT"\n'
        "make -j 2 lint test CONSTRAINTS= 2>&1 | tee log\n"
        'if make verdict; then echo ok; fi\nFOO=1 make\necho "make believe"\n'
    )
    assert make_calls(script) == [["changed-model"], ["lint", "test"], ["verdict"], []]


def test_make_targets_include_ci_mk() -> None:
    """The CI glue in ci.mk counts: the Makefile includes it."""
    assert {"state-check", "state-manifest", "train"} <= make_targets(REPO / "Makefile")


def test_make_targets_reads_rules_only(tmp_path: Path) -> None:
    """A rule counts; a file make merely knows of, or a bare .PHONY name, does not."""
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "VAR := 1\n.PHONY: real ghost\nreal: dep\n\techo real\ndep:\n\techo dep\n"
        "other: ; echo other\n"
    )
    targets = make_targets(makefile)
    assert {"real", "dep", "other"} <= targets
    assert "ghost" not in targets
    assert "missing" not in targets
    assert ".PHONY" not in targets
