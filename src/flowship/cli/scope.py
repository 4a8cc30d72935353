"""Which project branch a command works on, and how a flow run is told the same."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from flowship.config import Settings, read_settings


@dataclass(frozen=True)
class Scope:
    """A project branch as `--branch` / `--production` name it, with the project's settings."""

    config: str
    settings: Settings
    branch: str | None = None
    production: bool = False

    @property
    def project(self) -> str:
        return self.settings.project.name

    @property
    def branch_name(self) -> str:
        """The Metaflow project branch (`user.<name>`, `test.<branch>`, `prod`)."""
        from flowship.runs import branch_name

        return branch_name(self.branch, self.production)

    def flow_options(self) -> list[str]:
        """The flow's top-level options that select the same branch."""
        if self.production:
            return ["--production", *(["--branch", self.branch] if self.branch else [])]
        return ["--branch", self.branch] if self.branch else []


def scope_of(args: argparse.Namespace) -> Scope:
    """The scope of a command's `--config`, `--branch` and `--production`.

    Raises:
        ConfigError: the configuration file is missing or invalid.
    """
    return Scope(args.config, read_settings(args.config), args.branch, args.production)
