"""The CI state manifest: which champion the Metaflow state carried between CI runs holds.

With no cloud account, GitHub Actions carries `.metaflow/` from run to run in its cache. Every
job that writes that state leaves `.metaflow/state.json` in it (the champion, its verdict, when,
and which workflow run wrote it) and a copy at `.ci-state/state.json`, which it caches on its
own after the state, so the newest manifest survives a state save that does not. Every job that
restores the state restores that copy first, then the state, and checks the champion it found
against the newest manifest before training or monitoring against it.

Usage:
    python -m flowship.ci_state check --config config/project.toml --production
    python -m flowship.ci_state write --config config/project.toml --production
    python -m flowship.ci_state summary
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from flowship.errors import FlowshipError

MANIFEST_FORMAT = 1
DEFAULT_MANIFEST = Path(".metaflow") / "state.json"  # travels inside the state
DEFAULT_NEWEST = Path(".ci-state") / "state.json"  # cached on its own, outside the state's paths


class StateError(FlowshipError):
    """The restored state lost a promotion, or a manifest is unreadable; the message says which."""


@dataclass(frozen=True)
class Champion:
    """A champion as its run's tags record it."""

    run: str
    promoted_at: str
    verdict: str | None

    def order(self) -> tuple[str, int]:
        """Sort key: the newest promotion last (a rollback re-promotes an older run)."""
        run_id = self.run.rpartition("/")[2]
        return self.promoted_at, int(run_id) if run_id.isdigit() else 0


@dataclass(frozen=True)
class Writer:
    """The workflow run and job that wrote a manifest (`local` outside GitHub Actions)."""

    workflow: str
    job: str
    run_id: str
    run_attempt: str
    url: str | None

    def describe(self) -> str:
        """`monitor run 123 attempt 1, job train`, the way a reader finds it in Actions."""
        if not self.run_id:
            return f"{self.workflow} (outside GitHub Actions)"
        return f"{self.workflow} run {self.run_id} attempt {self.run_attempt}, job {self.job}"


@dataclass(frozen=True)
class Manifest:
    """What a job left in the state it saved."""

    project: str
    branch: str
    champion: Champion | None
    written_at: str
    written_by: Writer


def champion_from_tags(run: str, tags: Iterable[str]) -> Champion:
    """The champion record of `run` from its tags: its newest promotion and its verdict."""
    tags = list(tags)
    stamps = [tag.split(":", 2)[1] for tag in tags if tag.startswith("promoted:")]
    verdicts = [tag.partition(":")[2] for tag in tags if tag.startswith("verdict:")]
    return Champion(
        run=run, promoted_at=max(stamps, default=""), verdict=min(verdicts, default=None)
    )


def read_champion(
    config: str | Path | None, branch: str | None, production: bool
) -> tuple[str, str, Champion | None]:
    """The project, the project branch and its champion in the current Metaflow datastore
    (`config` None: the default configuration file)."""
    from flowship.config import read_settings
    from flowship.registry import find_champion
    from flowship.runs import branch_name

    project = (read_settings(config) if config is not None else read_settings()).project.name
    scope = branch_name(branch, production)
    run = find_champion(project, scope)
    champion = champion_from_tags(str(run.pathspec), run.tags) if run is not None else None
    return project, scope, champion


def writer_from_env(env: Mapping[str, str]) -> Writer:
    """The writer GitHub Actions' default environment variables describe."""
    run_id = env.get("GITHUB_RUN_ID", "")
    attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
    server, repository = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")
    url = (
        f"{server}/{repository}/actions/runs/{run_id}/attempts/{attempt}"
        if run_id and server and repository
        else None
    )
    return Writer(
        workflow=env.get("GITHUB_WORKFLOW", "local"),
        job=env.get("GITHUB_JOB", ""),
        run_id=run_id,
        run_attempt=attempt if run_id else "",
        url=url,
    )


def new_manifest(
    project: str,
    branch: str,
    champion: Champion | None,
    writer: Writer,
    now: datetime | None = None,
) -> Manifest:
    """The manifest a job leaves with the state it is about to save."""
    written_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Manifest(project, branch, champion, written_at, writer)


def manifest_to_json(manifest: Manifest) -> str:
    """The manifest as the JSON text of `state.json`."""
    return json.dumps({"format": MANIFEST_FORMAT, **asdict(manifest)}, indent=2) + "\n"


def parse_manifest(text: str, source: str = "state.json") -> Manifest:
    """Read a manifest back from its JSON text.

    Raises:
        StateError: the text is not a manifest of this format.
    """
    try:
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {MANIFEST_FORMAT}")
        champion = data["champion"]
        return Manifest(
            project=str(data["project"]),
            branch=str(data["branch"]),
            champion=Champion(**champion) if champion is not None else None,
            written_at=str(data["written_at"]),
            written_by=Writer(**data["written_by"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        problem = f"no {exc} key" if isinstance(exc, KeyError) else str(exc)
        raise StateError(
            f"{source} is not a flowship state manifest ({problem}); "
            "delete it to start a new record, or restore the cache that wrote it"
        ) from None


def load_manifest(path: Path) -> Manifest | None:
    """The manifest at `path`, or None when there is none (no state saved with one yet).

    Raises:
        StateError: the file is not a manifest.
    """
    if not path.is_file():
        return None
    return parse_manifest(path.read_text(), str(path))


def lost_promotion(restored: Champion | None, newest: Manifest) -> str | None:
    """What the restored state lost against the newest manifest, or None when it lost nothing.

    The restored champion may be newer than the manifest's (the manifest's save failed, or a
    reader came between the state's save and the manifest's); it may not be older, or missing,
    when the manifest records one.
    """
    recorded = newest.champion
    if recorded is None or (restored is not None and restored.order() >= recorded.order()):
        return None
    left = (
        f"{newest.written_by.describe()} left {recorded.run} (verdict {recorded.verdict}, "
        f"promoted {recorded.promoted_at}) as the champion at {newest.written_at}"
    )
    found = (
        "the restored state has no champion"
        if restored is None
        else f"the restored state's champion {restored.run} (promoted {restored.promoted_at}) "
        "is older"
    )
    return (
        f"{found}, but {left}: that promotion is not in the state restored here (its save "
        "was refused or failed, or the cache evicted it), so this job stops rather than work "
        "against an older champion; to go on from this state, accept the loss by deleting the "
        "newer manifests (gh cache list --key metaflow-manifest-; gh cache delete <key>)"
    )


def _champion_text(champion: Champion | None) -> str:
    if champion is None:
        return "no champion"
    return (
        f"champion `{champion.run}` (verdict `{champion.verdict}`, promoted {champion.promoted_at})"
    )


def check_state(
    project: str,
    branch: str,
    restored: Champion | None,
    own: Manifest | None,
    newest: Manifest | None,
    key: str,
) -> str:
    """The job-summary line for the state a job starts from: `restored` is the champion of the
    restored datastore, `own` the manifest saved inside that state, `newest` the one cached on
    its own (the state's own stands in when there is none).

    Raises:
        StateError: the restored state lost a promotion the newest manifest records.
    """
    source = f"restored from cache `{key}`" if key else "no cache restored"
    if own is not None:
        source += f" (saved by {own.written_by.describe()} at {own.written_at})"
    line = f"**State in:** {_champion_text(restored)}, {source}"
    newest = newest or own
    if newest is None:
        return f"{line}; no manifest saved yet."
    if (newest.project, newest.branch) != (project, branch):
        return (
            f"{line}; the newest manifest describes project {newest.project!r}, branch "
            f"{newest.branch!r}, not {project!r}, {branch!r}: nothing to compare."
        )
    if (lost := lost_promotion(restored, newest)) is not None:
        raise StateError(lost)
    return f"{line}; the newest manifest ({newest.written_by.describe()}) agrees."


def summary_line(manifest: Manifest) -> str:
    """The job-summary line for the state a job leaves."""
    writer = manifest.written_by
    link = f" ([run]({writer.url}))" if writer.url else ""
    return (
        f"**State out:** {_champion_text(manifest.champion)} in project {manifest.project}, "
        f"branch {manifest.branch}; written by {writer.describe()} at {manifest.written_at}{link}."
    )


def _cmd_check(args: argparse.Namespace) -> int:
    project, branch, restored = read_champion(args.config, args.branch, args.production)
    own, newest = load_manifest(args.manifest), load_manifest(args.newest)
    try:
        line = check_state(project, branch, restored, own, newest, args.key)
    except StateError as exc:
        print(f"**State lost:** {exc}")  # the job summary says it too, not only the log
        raise
    print(line)
    return 0


def _cmd_write(args: argparse.Namespace) -> int:
    project, branch, champion = read_champion(args.config, args.branch, args.production)
    text = manifest_to_json(new_manifest(project, branch, champion, writer_from_env(os.environ)))
    for path in (args.manifest, args.newest):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    if manifest is None:
        raise StateError(f"no manifest at {args.manifest}; write one with `make state-manifest`")
    print(summary_line(manifest))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flowship.ci_state",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    scoped = argparse.ArgumentParser(add_help=False)
    scoped.add_argument("--config", help="project TOML (default: config/project.toml)")
    scoped.add_argument("--branch", help="project branch name (test.<name>)")
    scoped.add_argument("--production", action="store_true", help="the prod project branch")
    manifest = argparse.ArgumentParser(add_help=False)
    manifest.add_argument(
        "--manifest", type=Path, default=DEFAULT_MANIFEST, help="the manifest inside the state"
    )
    newest = argparse.ArgumentParser(add_help=False)
    newest.add_argument(
        "--newest", type=Path, default=DEFAULT_NEWEST, help="the manifest cached on its own"
    )
    check = commands.add_parser(
        "check",
        parents=[scoped, manifest, newest],
        help="exit 2 when the restored champion is older than the newest manifest's",
    )
    check.add_argument("--restored-key", dest="key", default="", help="the cache key restored")
    check.set_defaults(func=_cmd_check)
    write = commands.add_parser(
        "write",
        parents=[scoped, manifest, newest],
        help="write the manifest of the current state (inside it, and the copy cached apart)",
    )
    write.set_defaults(func=_cmd_write)
    summary = commands.add_parser(
        "summary", parents=[manifest], help="print the manifest as a Markdown line"
    )
    summary.set_defaults(func=_cmd_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures print one line and exit with status 2."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FlowshipError as exc:  # the CLI's rule: user errors are one line, bugs a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
