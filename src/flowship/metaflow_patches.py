"""A fix to where Metaflow keeps local cards, applied only to the Metaflow releases it was
written against (`PATCHED_VERSIONS`); `tests/unit/test_metaflow_patches.py` fails when the
upstream method it replaces changes (`UPSTREAM_SHA256`), so a pin bump re-checks it.

Metaflow 2.19 writes a local card under the *working directory's* `.metaflow` (it walks up
from the cwd), but reads it from the datastore the task recorded (`METAFLOW_DATASTORE_SYSROOT_
LOCAL`). With the datastore anywhere else (a shared folder, CI's cache folder) a card is
written and never found: `CardNotPresentException`. Its `METAFLOW_CARD_LOCALROOT` setting
would fix that, but `CardDatastore.get_storage_root` never returns it (the branch that reads
it falls through to None). The replacement returns `METAFLOW_CARD_LOCALROOT` when set, else
the card folder of the configured local datastore, else what upstream does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

PATCHED_VERSIONS = ("2.19.39",)
# sha256 of the source of `metaflow.plugins.cards.card_datastore.CardDatastore.get_storage_root`
UPSTREAM_SHA256 = "fe393efbdd544a0ab53510c581a44ea4f0486f504422d72f855c0a607be4554d"

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


def patch_card_root() -> bool:
    """Replace `CardDatastore.get_storage_root` when the installed Metaflow is one it was
    written for; returns whether it did (otherwise it logs a warning and changes nothing)."""
    import metaflow
    from metaflow.plugins.cards.card_datastore import CardDatastore

    if getattr(CardDatastore.get_storage_root, "__flowship__", False):
        return True
    if metaflow.__version__ not in PATCHED_VERSIONS:
        _log.warning(
            "Metaflow %s is not one of %s: its local card folder is left as it is (cards may "
            "not be found with METAFLOW_DATASTORE_SYSROOT_LOCAL elsewhere); re-check "
            "flowship.metaflow_patches for this version",
            metaflow.__version__,
            ", ".join(PATCHED_VERSIONS),
        )
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
