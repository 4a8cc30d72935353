"""Two fixes to Metaflow's cards, applied only to the Metaflow releases they were written
against (`PATCHED_VERSIONS`); `tests/unit/test_metaflow_patches.py` fails when an upstream
method they replace changes (`UPSTREAM_SHA256`), so a pin bump re-checks them.

Where local cards are kept (`patch_card_root`):

Metaflow 2.19 writes a local card under the *working directory's* `.metaflow` (it walks up
from the cwd), but reads it from the datastore the task recorded (`METAFLOW_DATASTORE_SYSROOT_
LOCAL`). With the datastore anywhere else (a shared folder, CI's cache folder) a card is
written and never found: `CardNotPresentException`. Its `METAFLOW_CARD_LOCALROOT` setting
would fix that, but `CardDatastore.get_storage_root` never returns it (the branch that reads
it falls through to None). The replacement returns `METAFLOW_CARD_LOCALROOT` when set, else
the card folder of the configured local datastore, else what upstream does.

A finished task's cards rendered once (`patch_final_card_refresh`): at the end of a task
Metaflow 2.19 renders each card in a subprocess (`flow.py card create`, which imports the flow
and Metaflow again) and then, for card types that can update while the task runs (the default
card, metaflow-card-html's), starts a second one for a final "refresh" of the live data. That
second one only serves a live viewer of a running task (the html card does not even implement
refresh, so it stores nothing), and the task waits for it: 0.4-0.7 s just to start, per card
per run (TrainFlow has two, MonitorFlow one). The replacement keeps the final render only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

PATCHED_VERSIONS = ("2.19.39",)
# sha256 of the source of each upstream method replaced, by its dotted path
UPSTREAM_SHA256 = {
    "metaflow.plugins.cards.card_datastore.CardDatastore.get_storage_root": (
        "fe393efbdd544a0ab53510c581a44ea4f0486f504422d72f855c0a607be4554d"
    ),
    "metaflow.plugins.cards.card_decorator.CardDecorator.task_finished": (
        "553211aef81b143b99f26c5a97adbb4ff3e9821e9babacf7bc0b7615291a06dc"
    ),
}

_log = logging.getLogger(__name__)


def local_card_root() -> str | None:
    """Where local cards belong: `METAFLOW_CARD_LOCALROOT`, else beside the datastore."""
    from metaflow import metaflow_config

    if metaflow_config.CARD_LOCALROOT:
        return str(metaflow_config.CARD_LOCALROOT)
    sysroot = metaflow_config.DATASTORE_SYSROOT_LOCAL
    if sysroot:
        local_dir = metaflow_config.DATASTORE_LOCAL_DIR
        return str(Path(sysroot) / local_dir / metaflow_config.CARD_SUFFIX)
    return None


def _patchable(otherwise: str) -> bool:
    """Whether the installed Metaflow is one the patches were written for; warns if not."""
    import metaflow

    if metaflow.__version__ in PATCHED_VERSIONS:
        return True
    _log.warning(
        "Metaflow %s is not one of %s: %s; re-check flowship.metaflow_patches for this version",
        metaflow.__version__,
        ", ".join(PATCHED_VERSIONS),
        otherwise,
    )
    return False


def patch_card_root() -> bool:
    """Replace `CardDatastore.get_storage_root` when the installed Metaflow is one it was
    written for; returns whether it did (otherwise it logs a warning and changes nothing)."""
    from metaflow.plugins.cards.card_datastore import CardDatastore

    if getattr(CardDatastore.get_storage_root, "__flowship__", False):
        return True
    if not _patchable(
        "its local card folder is left as it is (cards may not be found with "
        "METAFLOW_DATASTORE_SYSROOT_LOCAL elsewhere)"
    ):
        return False
    upstream = CardDatastore.get_storage_root.__func__  # type: ignore[attr-defined]

    def get_storage_root(cls: Any, storage_type: str) -> Any:
        if storage_type == "local":
            root = local_card_root()
            if root:
                return root
        return upstream(cls, storage_type)

    get_storage_root.__flowship__ = True  # type: ignore[attr-defined]
    CardDatastore.get_storage_root = classmethod(get_storage_root)  # type: ignore[method-assign,assignment]
    return True


def patch_final_card_refresh() -> bool:
    """Replace `CardDecorator.task_finished` with one that renders a finished task's card
    once (no final refresh subprocess) when the installed Metaflow is one it was written for;
    returns whether it did (otherwise it logs a warning and changes nothing)."""
    from metaflow.plugins.cards.card_decorator import CardDecorator

    if getattr(CardDecorator.task_finished, "__flowship__", False):
        return True
    if not _patchable("each card is rendered, then refreshed, at the end of its task"):
        return False

    def task_finished(
        self: Any,
        step_name: str,
        flow: Any,
        graph: Any,
        is_task_ok: bool,
        retry_count: int,
        max_user_code_retries: int,
    ) -> None:
        if is_task_ok:
            self.card_creator.create(
                mode="render",
                final=True,
                card_uuid=self._card_uuid,
                user_set_card_id=self._user_set_card_id,
                runtime_card=self._is_runtime_card,
                decorator_attributes=self.attributes,
                card_options=self.card_options,
                logger=self._logger,
            )
        self._cleanup(step_name)

    task_finished.__flowship__ = True  # type: ignore[attr-defined]
    CardDecorator.task_finished = task_finished  # type: ignore[method-assign]
    return True
