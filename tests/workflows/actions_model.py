"""A model of what GitHub Actions does with state carried in its cache, replaying the real
workflow files: their cache steps, concurrency groups, reusable-workflow calls and re-runs.

What it models (GitHub's docs, and the @actions/cache package the cache actions run):
- A cache entry is a key and a version, the version being the `path:` list in order
  (`getCacheVersion` hashes the paths). Entries are immutable: saving a key that exists for
  that version is refused ("Unable to reserve cache with key ...", logged as info, the step
  stays green), and so is a save whose paths hold no file.
- Restore tries `key`, then each `restore-keys` line in order: an exact match, else the most
  recently created entry whose key starts with it, among entries of the same version.
- Concurrency: a group admits one running job or workflow run. A newer one queued for it
  replaces (cancels) an older pending one; `cancel-in-progress: true` cancels the running one.
  A job, or a called workflow, that queues for a group its own run already holds is a deadlock,
  which GitHub cancels ("deadlock ... between 'top level workflow' and '<job>'").
- A reusable workflow runs inside its caller's run: the same `run_id` and `run_attempt`, and
  the caller's `github.workflow`. Its jobs' `github.job` is their own id; `job_context="caller"`
  evaluates it as the calling job's id instead, so a key that depends on it is checked both ways.
- A re-run keeps `run_id`, increments `run_attempt`, and re-runs the failed (or cancelled) jobs
  and everything that needs them; the other jobs keep their results and outputs.

Runs on different runners share nothing but the cache: each job starts from an empty workspace,
and what its `run:` steps do to it is the `effect` the caller supplies (one call per make
target). The explorer (`explore`) enumerates every order in which the jobs' cache operations,
queueing and run starts can interleave, re-simulating each schedule from the start.

Not modelled: cache scopes (all runs are on the default branch), eviction, size limits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.workflows.test_workflows import make_calls

FINISHED = {"success", "failure", "cancelled", "skipped"}
REPOSITORY = "example/flowship"


class ModelError(AssertionError):
    """The workflows do something GitHub refuses (a deadlock) or the model does not know."""


# ---- expressions: ${{ ... }} and `if:` ------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,])|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
_STATUS_FUNCTIONS = re.compile(r"\b(always|success|failure|cancelled)\s*\(")
_WRAPPED = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.DOTALL)
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


@cache
def _tokens(expression: str) -> tuple[tuple[str, str], ...]:
    tokens, position = [], 0
    expression = expression.rstrip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise ModelError(f"cannot read expression {expression!r} at {position}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tuple(tokens)


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text == "":
        return 0.0
    try:
        return float(text)
    except ValueError:
        return math.nan


def _equal(left: Any, right: Any) -> bool:
    """GitHub's loose equality: strings ignore case, other mixes compare as numbers."""
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if type(left) is type(right) and not isinstance(left, int | float):
        return bool(left == right)
    return _number(left) == _number(right)


def truthy(value: Any) -> bool:
    """GitHub's truthiness: null, false, 0, NaN and '' are false."""
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "")


def to_text(value: Any) -> str:
    """How a value reads once substituted into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Parser:
    """Recursive descent over GitHub's expression grammar (the subset workflows here use)."""

    def __init__(self, expression: str, context: Mapping[str, Any]) -> None:
        self.tokens = _tokens(expression)
        self.position = 0
        self.context = context
        self.expression = expression

    def parse(self) -> Any:
        value = self._or()
        if self.position != len(self.tokens):
            raise ModelError(f"unexpected {self.tokens[self.position][1]!r} in {self.expression!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise ModelError(f"expression {self.expression!r} ends early")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise ModelError(f"expected {expected!r}, got {token[1]!r} in {self.expression!r}")
        self.position += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._comparison()
        while self._peek() == "&&":
            self._take()
            right = self._comparison()
            value = right if truthy(value) else value
        return value

    def _comparison(self) -> Any:
        value = self._unary()
        operator = self._peek()
        if operator in {"==", "!=", "<", ">", "<=", ">="}:
            self._take()
            right = self._unary()
            if operator == "==":
                return _equal(value, right)
            if operator == "!=":
                return not _equal(value, right)
            left_n, right_n = _number(value), _number(right)
            return {
                "<": left_n < right_n,
                ">": left_n > right_n,
                "<=": left_n <= right_n,
                ">=": left_n >= right_n,
            }[operator]
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._postfix()

    def _postfix(self) -> Any:
        value = self._primary()
        while self._peek() in {".", "["}:
            if self._take()[1] == ".":
                value = _member(value, self._take()[1])
            else:
                key = self._or()
                self._take("]")
                value = _member(value, to_text(key))
        return value

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "name":
            raise ModelError(f"unexpected {text!r} in {self.expression!r}")
        if text in {"true", "false"}:
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            self._take()
            args = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take(")")
            return self._call(text, args)
        return _member(self.context, text)

    def _call(self, name: str, args: list[Any]) -> Any:
        status = self.context.get("__status__", {})
        if name in {"always", "success", "failure", "cancelled"}:
            return bool(status.get(name, name == "always"))
        if name == "contains":
            return to_text(args[1]).casefold() in to_text(args[0]).casefold()
        if name == "startsWith":
            return to_text(args[0]).casefold().startswith(to_text(args[1]).casefold())
        if name == "endsWith":
            return to_text(args[0]).casefold().endswith(to_text(args[1]).casefold())
        if name == "format":
            text = to_text(args[0])
            for index, arg in enumerate(args[1:]):
                text = text.replace("{" + str(index) + "}", to_text(arg))
            return text
        raise ModelError(f"function {name}() is not modelled")


def _member(value: Any, name: str) -> Any:
    if not isinstance(value, Mapping):
        return None
    if name in value:
        return value[name]
    folded = {str(k).casefold(): v for k, v in value.items()}
    return folded.get(name.casefold())


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of one expression (the text inside `${{ }}`)."""
    return _Parser(expression, context).parse()


def substitute(template: Any, context: Mapping[str, Any]) -> str:
    """A string with every `${{ expression }}` replaced by its value."""
    return _TEMPLATE.sub(lambda match: to_text(evaluate(match.group(1), context)), str(template))


def condition(value: Any, context: Mapping[str, Any]) -> bool:
    """Whether an `if:` holds: without a status function GitHub prepends `success() &&`."""
    if value is None:
        value = "success()"
    if isinstance(value, bool):
        return value
    text = str(value)
    if wrapped := _WRAPPED.match(text):
        text = wrapped.group(1)
    if not _STATUS_FUNCTIONS.search(text):
        text = f"success() && ({text})"
    return truthy(evaluate(text, context))


# ---- the cache ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One immutable cache entry."""

    key: str
    version: tuple[str, ...]
    files: Mapping[str, Any]
    created: int


@dataclass
class Cache:
    """The repository's Actions cache (one scope: the default branch)."""

    entries: list[Entry] = field(default_factory=list)

    def restore(self, paths: Sequence[str], keys: Sequence[str]) -> Entry | None:
        """The entry a restore with `key` + `restore-keys` (`keys`, in order) gets, if any."""
        version = tuple(paths)
        candidates = [entry for entry in self.entries if entry.version == version]
        for key in keys:
            exact = [entry for entry in candidates if entry.key == key]
            if exact:
                return exact[0]
            partial = [entry for entry in candidates if entry.key.startswith(key)]
            if partial:
                return max(partial, key=lambda entry: entry.created)
        return None

    def save(self, paths: Sequence[str], key: str, files: Mapping[str, Any], now: int) -> bool:
        """Create an entry; False (refused) when the key exists for this version."""
        version = tuple(paths)
        if any(entry.key == key and entry.version == version for entry in self.entries):
            return False
        self.entries.append(Entry(key, version, dict(files), now))
        return True


def lines(value: str | None) -> list[str]:
    """A multi-line action input as its non-empty trimmed lines (how @actions/core reads it)."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _cache_action(uses: str) -> str | None:
    """`restore`, `save`, `cache` (restore now, save after the job) or None."""
    name = uses.split("@", 1)[0]
    return {
        "actions/cache/restore": "restore",
        "actions/cache/save": "save",
        "actions/cache": "cache",
    }.get(name)


# ---- workflows, runs and jobs ---------------------------------------------------------------


def load_workflows(directory: Path) -> dict[str, dict[str, Any]]:
    """Every workflow file in `directory`, parsed, by file name."""
    return {
        path.name: yaml.safe_load(path.read_text())
        for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
    }


def _touches_cache(job: Mapping[str, Any]) -> bool:
    return any(_cache_action(str(step.get("uses", ""))) for step in job.get("steps") or [])


def _concurrency(spec: Any) -> tuple[str, bool] | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return spec, False
    return str(spec["group"]), bool(spec.get("cancel-in-progress", False))


@dataclass(frozen=True)
class StepResult:
    """What a `run:` step's make target did: its outcome and the outputs it wrote."""

    outcome: str = "success"
    outputs: Mapping[str, str] = field(default_factory=dict)


Effect = Callable[["Node", str, Mapping[str, str]], StepResult]


@dataclass(eq=False)
class Node:
    """A job of a run, or a job that calls a reusable workflow (whose jobs are its children)."""

    run: Run
    name: str
    job_id: str
    spec: dict[str, Any]
    doc: dict[str, Any]
    call: Node | None
    needs: list[Node] = field(default_factory=list)
    status: str = "waiting"
    outputs: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    workspace: dict[str, Any] = field(default_factory=dict)
    holds: list[str] = field(default_factory=list)
    failed: bool = False
    started: bool = False
    memo: dict[str, Any] = field(default_factory=dict)  # the effect's notes on this job
    progress: int = 0  # cache operations done
    steps_left: Iterator[None] | None = None

    @property
    def is_call(self) -> bool:
        return "uses" in self.spec

    @property
    def label(self) -> str:
        return f"{self.run.label}#{self.run.attempt}:{self.name}"


@dataclass(eq=False)
class Run:
    """One attempt of a workflow run."""

    world: World
    file: str
    doc: dict[str, Any]
    label: str
    event: str
    run_id: int
    attempt: int
    after: list[Run]
    nodes: dict[str, Node] = field(default_factory=dict)
    status: str = "new"  # new, pending, active, done
    holds: list[str] = field(default_factory=list)


@dataclass
class _Group:
    running: Node | Run | None = None
    pending: Node | Run | None = None


class World:
    """Runs of the workflows sharing one cache, advanced one scheduling choice at a time."""

    def __init__(
        self,
        workflows: Mapping[str, dict[str, Any]],
        effect: Effect,
        *,
        job_context: str = "callee",
        failing_saves: frozenset[tuple[str, int, str, str]] = frozenset(),
    ) -> None:
        self.workflows = workflows
        self.effect = effect
        self.job_context = job_context
        self.failing_saves = failing_saves  # (run label, attempt, job name, key prefix)
        self.cache = Cache()
        self.clock = 0
        self.runs: list[Run] = []
        self.trace: list[str] = []
        self.groups: dict[str, _Group] = {}
        self.cancelled_midway: list[str] = []
        self.cancelled_pending: list[str] = []
        self._next_run_id = 1000
        self._cache_groups = {
            group[0].casefold()
            for doc in workflows.values()
            for job in doc["jobs"].values()
            if _touches_cache(job) and (group := _concurrency(job.get("concurrency")))
        }

    # -- building runs

    def tick(self) -> int:
        """Advance and return the world's clock (cache creation times, run ids, stamps)."""
        self.clock += 1
        return self.clock

    def run(
        self, file: str, *, label: str, event: str = "schedule", after: Sequence[Run] = ()
    ) -> Run:
        """A new workflow run of `file`, started once every run in `after` is done."""
        run = Run(self, file, self.workflows[file], label, event, self._next_run_id, 1, [*after])
        self._next_run_id += 1
        self._add_nodes(run, run.doc, prefix="", call=None)
        self.runs.append(run)
        return run

    def rerun(self, previous: Run, *, after: Sequence[Run] = (), every_job: bool = False) -> Run:
        """The next attempt of `previous`. "Re-run failed jobs": its failed or cancelled jobs and
        every job that needs them run again, the others keep their results and outputs;
        `every_job` is "Re-run all jobs"."""
        run = Run(
            self, previous.file, previous.doc, previous.label, previous.event,
            previous.run_id, previous.attempt + 1, [previous, *after],
        )  # fmt: skip
        self._add_nodes(run, run.doc, prefix="", call=None)
        again = {
            name
            for name, node in previous.nodes.items()
            if not node.is_call and (every_job or node.status in {"failure", "cancelled"})
        }
        changed = True
        while changed:
            changed = False
            for node in run.nodes.values():
                if node.name not in again and (
                    any(need.name in again for need in node.needs)
                    or (node.call is not None and node.call.name in again)
                ):
                    again.add(node.name)
                    changed = True
        reopened = {
            parent.name
            for node in run.nodes.values()
            if node.name in again
            for parent in self._callers(node)
        }
        for name, node in run.nodes.items():
            if name not in again and name not in reopened:
                kept = previous.nodes[name]
                node.status, node.outputs = kept.status, dict(kept.outputs)
        self.runs.append(run)
        return run

    @staticmethod
    def _callers(node: Node) -> Iterator[Node]:
        parent = node.call
        while parent is not None:
            yield parent
            parent = parent.call

    def _add_nodes(self, run: Run, doc: dict[str, Any], prefix: str, call: Node | None) -> None:
        jobs: dict[str, Any] = doc["jobs"]
        created: dict[str, Node] = {}
        for job_id, spec in jobs.items():
            node = Node(run, prefix + job_id, job_id, spec, doc, call)
            created[job_id] = node
            run.nodes[node.name] = node
        for job_id, spec in jobs.items():
            needs = spec.get("needs") or []
            created[job_id].needs = [
                created[n] for n in ([needs] if isinstance(needs, str) else needs)
            ]
        for job_id, spec in jobs.items():
            if "uses" in spec:
                uses = str(spec["uses"])
                if not uses.startswith("./.github/workflows/"):
                    raise ModelError(f"{uses}: only local reusable workflows are modelled")
                if "concurrency" in spec:
                    raise ModelError(f"job {job_id}: concurrency on a calling job is not modelled")
                called = self.workflows[Path(uses).name]
                self._add_nodes(run, called, prefix=f"{prefix}{job_id}/", call=created[job_id])

    # -- contexts

    def github(self, node: Node | None, run: Run) -> dict[str, Any]:
        """The `github` context (a called workflow sees its caller's run)."""
        job = None
        if node is not None:
            job = node.job_id
            if self.job_context == "caller" and node.call is not None:
                job = node.call.job_id
        return {
            "run_id": str(run.run_id),
            "run_attempt": str(run.attempt),
            "job": job,
            "workflow": run.doc.get("name", run.file),
            "event_name": run.event,
            "ref": "refs/heads/main",
            "ref_name": "main",
            "sha": "0" * 40,
            "repository": REPOSITORY,
            "server_url": "https://github.com",
            "actor": "flowship-bot",
        }

    def context(self, node: Node, step_status: Mapping[str, bool] | None = None) -> dict[str, Any]:
        """Every context an expression in `node` may read."""
        needs_ok = all(need.status == "success" for need in node.needs)
        status = step_status or {
            "success": needs_ok,
            "failure": any(need.status == "failure" for need in node.needs),
            "cancelled": False,
            "always": True,
        }
        return {
            "github": self.github(node, node.run),
            "needs": {
                need.job_id: {"result": need.status, "outputs": need.outputs} for need in node.needs
            },
            "steps": node.steps,
            "vars": {},
            "secrets": {},
            "inputs": {},
            "env": {},
            "__status__": status,
        }

    # -- scheduling

    def enabled(self) -> list[tuple[str, Node | Run]]:
        """Every choice the scheduler may take next."""
        actions: list[tuple[str, Node | Run]] = []
        for run in self.runs:
            if run.status == "new" and all(before.status == "done" for before in run.after):
                actions.append(("start", run))
            if run.status != "active":
                continue
            for node in run.nodes.values():
                if node.status == "running" and not node.is_call:
                    actions.append(("advance", node))
                elif node.status == "ready":
                    actions.append(("queue", node))
        return actions

    def perform(self, action: tuple[str, Node | Run]) -> None:
        """Take one scheduling choice, then everything that follows from it without a choice."""
        kind, target = action
        if kind == "start":
            assert isinstance(target, Run)
            self._start_run(target)
        elif kind == "queue":
            assert isinstance(target, Node)
            self._queue(target)
        else:
            assert isinstance(target, Node)
            self._advance(target)
        self._settle()

    def finished(self) -> bool:
        return all(run.status == "done" for run in self.runs)

    def stuck(self) -> list[str]:
        """What still waits when nothing can move (empty when every run finished)."""
        return [
            f"{node.label} ({node.status})"
            for run in self.runs
            for node in run.nodes.values()
            if node.status not in FINISHED
        ] + [
            f"run {run.label}#{run.attempt} ({run.status})"
            for run in self.runs
            if run.status != "done"
        ]

    def _start_run(self, run: Run) -> None:
        self.trace.append(f"start {run.file} run {run.run_id} attempt {run.attempt} ({run.label})")
        group = _concurrency(run.doc.get("concurrency"))
        if group is None:
            run.status = "active"
            return
        name = substitute(group[0], {"github": self.github(None, run), "vars": {}, "inputs": {}})
        run.status = "pending"
        self._acquire(run, name, group[1], ancestors=[])

    def _queue(self, node: Node) -> None:
        group = self._group_of(node)
        assert group is not None
        name = substitute(group[0], self.context(node))
        node.status = "pending"
        self._acquire(node, name, group[1], [node.run, *self._callers(node)])

    def _group_of(self, node: Node) -> tuple[str, bool] | None:
        """A job's own group; for a job that calls a workflow, that workflow's top-level one."""
        if node.is_call:
            return _concurrency(self.workflows[Path(node.spec["uses"]).name].get("concurrency"))
        return _concurrency(node.spec.get("concurrency"))

    def _acquire(
        self, holder: Node | Run, name: str, cancel_in_progress: bool, ancestors: list[Node | Run]
    ) -> None:
        key = name.casefold()  # group names are case-insensitive
        for ancestor in ancestors:
            if key in ancestor.holds:
                raise ModelError(
                    f"deadlock: {self._describe(holder)} queues for concurrency group {name!r}, "
                    f"which its own {self._describe(ancestor)} holds; GitHub cancels it"
                )
        group = self.groups.setdefault(key, _Group())
        if group.running is None:
            self._grant(holder, key, group)
            return
        if cancel_in_progress:
            self._cancel(group.running, midway=True)
            self._grant(holder, key, group)
            return
        if group.pending is not None:
            self.cancelled_pending.append(self._describe(group.pending))
            self.trace.append(f"cancel pending {self._describe(group.pending)} (group {name})")
            self._cancel(group.pending, midway=False)
        group.pending = holder
        self.trace.append(f"{self._describe(holder)} waits for group {name}")

    def _grant(self, holder: Node | Run, key: str, group: _Group) -> None:
        if holder.status == "pending":
            self.trace.append(f"{self._describe(holder)} gets group {key}")
        group.running = holder
        holder.holds.append(key)
        if isinstance(holder, Run):
            holder.status = "active"
        elif holder.is_call:
            holder.status = "running"
        else:
            self._start_job(holder)

    def _release(self, holder: Node | Run) -> None:
        for key in holder.holds:
            group = self.groups[key]
            if group.running is holder:
                group.running = None
                if group.pending is not None:
                    waiting, group.pending = group.pending, None
                    self._grant(waiting, key, group)
        holder.holds = []

    def _cancel(self, holder: Node | Run, *, midway: bool) -> None:
        nodes = list(holder.nodes.values()) if isinstance(holder, Run) else [holder]
        if isinstance(holder, Node) and holder.is_call:
            nodes += [n for n in holder.run.nodes.values() if self._inside(n, holder)]
        for node in nodes:
            if node.status in FINISHED:
                continue
            if midway and node.started:
                self.cancelled_midway.append(node.label)
            node.status = "cancelled"
            node.steps_left = None
            self._unqueue(node)
            self._release(node)
        self._unqueue(holder)
        if isinstance(holder, Run):
            holder.status = "done"
        self._release(holder)

    def _unqueue(self, holder: Node | Run) -> None:
        for group in self.groups.values():
            if group.pending is holder:
                group.pending = None

    @staticmethod
    def _inside(node: Node, call: Node) -> bool:
        parent = node.call
        while parent is not None:
            if parent is call:
                return True
            parent = parent.call
        return False

    @staticmethod
    def _describe(holder: Node | Run) -> str:
        if isinstance(holder, Run):
            return f"top level workflow {holder.file} ({holder.label}#{holder.attempt})"
        return f"job {holder.label}"

    def _settle(self) -> None:
        """Skip, start and finish what needs no choice, until nothing changes."""
        changed = True
        while changed:
            changed = False
            for run in self.runs:
                if run.status != "active":
                    continue
                for node in run.nodes.values():
                    if node.status == "waiting" and self._eligible(node):
                        changed = True
                        if not condition(node.spec.get("if"), self.context(node)):
                            self._skip(node)
                        elif (group := self._group_of(node)) is not None:
                            # When a job queues is the scheduler's choice, unless the job uses
                            # no cache and shares no group with a job that does.
                            shared = group[0].casefold() in self._cache_groups
                            if node.is_call or _touches_cache(node.spec) or shared:
                                node.status = "ready"
                            else:
                                self._queue(node)
                        elif node.is_call:
                            node.status = "running"
                            node.started = True
                        else:
                            self._start_job(node)
                    elif node.status == "running" and node.is_call:
                        children = [n for n in run.nodes.values() if n.call is node]
                        if all(child.status in FINISHED for child in children):
                            results = {child.status for child in children}
                            node.status = next(
                                (s for s in ("failure", "cancelled") if s in results), "success"
                            )
                            self._release(node)
                            changed = True
                if all(node.status in FINISHED for node in run.nodes.values()):
                    run.status = "done"
                    self.trace.append(f"end {run.file} run {run.run_id} attempt {run.attempt}")
                    self._release(run)
                    changed = True

    def _eligible(self, node: Node) -> bool:
        if node.call is not None and node.call.status != "running":
            return False
        return all(need.status in FINISHED for need in node.needs)

    def _skip(self, node: Node) -> None:
        node.status = "skipped"
        if node.is_call:
            for child in node.run.nodes.values():
                if self._inside(child, node):
                    child.status = "skipped"

    # -- jobs

    def _start_job(self, node: Node) -> None:
        node.status = "running"
        node.started = True
        node.steps_left = self._steps(node)
        self._advance(node)  # the steps before its first cache operation are its own business

    def _advance(self, node: Node) -> None:
        assert node.steps_left is not None
        node.progress += 1
        try:
            next(node.steps_left)
        except StopIteration:
            node.status = "failure" if node.failed else "success"
            node.steps_left = None
            self._release(node)

    def _steps(self, node: Node) -> Iterator[None]:
        post_saves: list[tuple[list[str], str]] = []
        for index, step in enumerate(node.spec.get("steps") or []):
            step_id = str(step.get("id", f"step-{index}"))
            context = self.context(
                node,
                {
                    "success": not node.failed,
                    "failure": node.failed,
                    "cancelled": False,
                    "always": True,
                },
            )
            if not condition(step.get("if"), context):
                node.steps[step_id] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
                continue
            inputs = {k: substitute(v, context) for k, v in (step.get("with") or {}).items()}
            outcome, outputs = "success", {}
            action = _cache_action(str(step.get("uses", "")))
            if action in {"restore", "cache"}:
                yield  # a cache operation: the scheduler decides when it happens
                outputs = self._restore(node, inputs)
                if action == "cache" and outputs["cache-hit"] != "true":
                    post_saves.append((lines(inputs["path"]), inputs["key"]))
            elif action == "save":
                yield
                self._save(node, lines(inputs["path"]), inputs["key"])
            elif "run" in step:
                # the workflow's env, then the job's, then the step's; `__run__` is the command
                env = {
                    str(k): substitute(v, context)
                    for scope in (node.doc, node.spec, step)
                    for k, v in (scope.get("env") or {}).items()
                }
                env["__run__"] = str(step["run"])
                for call in make_calls(str(step["run"])):
                    for target in call:
                        result = self.effect(node, target, env)
                        outputs.update(result.outputs)
                        if result.outcome != "success":
                            outcome = "failure"
                            break
                    if outcome != "success":
                        break
            node.steps[step_id] = {"outcome": outcome, "conclusion": outcome, "outputs": outputs}
            if outcome != "success" and not step.get("continue-on-error"):
                node.failed = True
        for paths, key in post_saves:  # actions/cache's post step: only when the job succeeded
            if not node.failed:
                yield
                self._save(node, paths, key)
        context = self.context(node)
        node.outputs = {
            k: substitute(v, context) for k, v in (node.spec.get("outputs") or {}).items()
        }

    def _restore(self, node: Node, inputs: Mapping[str, str]) -> dict[str, str]:
        paths = lines(inputs["path"])
        keys = [inputs["key"], *lines(inputs.get("restore-keys"))]
        entry = self.cache.restore(paths, keys)
        if entry is not None:
            node.workspace.update(entry.files)
        self.trace.append(
            f"{node.label}: restore {paths} {keys} -> {entry.key if entry else 'miss'}"
        )
        return {
            "cache-hit": "true" if entry is not None and entry.key == keys[0] else "false",
            "cache-primary-key": keys[0],
            "cache-matched-key": entry.key if entry is not None else "",
        }

    def _save(self, node: Node, paths: list[str], key: str) -> None:
        files = {
            name: value
            for name, value in node.workspace.items()
            if any(name == path or name.startswith(path.rstrip("/") + "/") for path in paths)
        }
        injected = any(
            (node.run.label, node.run.attempt, node.name) == fault[:3] and key.startswith(fault[3])
            for fault in self.failing_saves
        )
        if injected:
            result = "FAILED (injected upload error; the step only warns)"
        elif not files:
            result = "not saved: none of its paths exist (a warning; the step stays green)"
        elif self.cache.save(paths, key, files, self.tick()):
            result = "saved"
        else:
            result = "REFUSED: the key exists (immutable; logged as info, the step stays green)"
        self.trace.append(f"{node.label}: save {paths} {key} -> {result}")

    def fingerprint(self) -> Any:
        """Everything the rest of a schedule depends on (not the trace): equal fingerprints
        have equal futures, so the explorer visits each once."""

        def frozen(value: Any) -> Any:
            if isinstance(value, Mapping):
                return tuple(sorted((str(k), frozen(v)) for k, v in value.items()))
            if isinstance(value, list | tuple):
                return tuple(frozen(v) for v in value)
            if isinstance(value, set | frozenset):
                return tuple(sorted(frozen(v) for v in value))
            return value

        def who(holder: Node | Run | None) -> Any:
            if holder is None:
                return None
            if isinstance(holder, Run):
                return ("run", holder.label, holder.attempt)
            return (holder.run.label, holder.run.attempt, holder.name)

        effect = getattr(self.effect, "fingerprint", None)
        return (
            self.clock,
            tuple((e.key, e.version, frozen(e.files), e.created) for e in self.cache.entries),
            tuple(sorted((k, who(g.running), who(g.pending)) for k, g in self.groups.items())),
            tuple(
                (
                    run.status,
                    tuple(run.holds),
                    tuple(
                        (n.status, n.progress, n.failed, frozen(n.workspace), frozen(n.steps),
                         frozen(n.outputs), tuple(n.holds), frozen(n.memo))
                        for n in run.nodes.values()
                    ),
                )
                for run in self.runs
            ),
            tuple(self.cancelled_midway),
            tuple(self.cancelled_pending),
            effect() if effect is not None else None,
        )  # fmt: skip

    # -- after the fact

    def restore_as(self, file: str, job_id: str) -> dict[str, Any]:
        """The workspace a fresh run of `file`'s job `job_id` gets from its restore steps."""
        run = Run(self, file, self.workflows[file], "next", "schedule", self._next_run_id, 1, [])
        node = Node(run, job_id, job_id, self.workflows[file]["jobs"][job_id], run.doc, None)
        for step in node.spec.get("steps") or []:
            if _cache_action(str(step.get("uses", ""))) in {"restore", "cache"}:
                context = self.context(node)
                inputs = {k: substitute(v, context) for k, v in (step.get("with") or {}).items()}
                outputs = self._restore(node, inputs)
                if "id" in step:
                    node.steps[str(step["id"])] = {"outcome": "success", "outputs": outputs}
        return node.workspace


def explore(build: Callable[[], World], limit: int = 100_000) -> Iterator[World]:
    """Every state a schedule of the world `build` makes can end in, one finished world each.

    A depth-first search over the scheduler's choices, re-simulating each schedule from the
    start; a schedule that reaches a state another one already reached (same fingerprint) stops
    there, its future having been explored once.

    Raises:
        ModelError: a schedule deadlocks, gets stuck, or there are more than `limit`.
    """
    todo: list[list[int]] = [[]]
    seen: set[Any] = set()
    count = 0
    while todo:
        prefix = todo.pop()
        world = build()
        taken: list[int] = []
        repeated = False
        while actions := world.enabled():
            if len(taken) < len(prefix):
                choice = prefix[len(taken)]
            else:
                choice = 0
                todo.extend([*taken, alternative] for alternative in range(len(actions) - 1, 0, -1))
            taken.append(choice)
            world.perform(actions[choice])
            if len(taken) >= len(prefix):  # past the replayed prefix: a state not met before?
                state = world.fingerprint()
                if state in seen:
                    repeated = True
                    break
                seen.add(state)
        if repeated:
            continue
        if not world.finished():
            raise ModelError("stuck: " + "; ".join(world.stuck()) + "\n" + "\n".join(world.trace))
        count += 1
        if count > limit:
            raise ModelError(f"more than {limit} schedules: narrow the scenario")
        yield world
