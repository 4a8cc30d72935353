"""The Metaflow patch is tied to the upstream code it replaces, and puts cards by the
datastore."""

from __future__ import annotations

import ast
import hashlib
import inspect

import metaflow
import pytest
from metaflow import metaflow_config
from metaflow.plugins.cards import card_datastore

from flowship import metaflow_patches


def _upstream_source() -> str:
    source = inspect.getsource(card_datastore)
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == "CardDatastore":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "get_storage_root":
                    return str(ast.get_source_segment(source, item))
    raise AssertionError("Metaflow no longer defines CardDatastore.get_storage_root")


def test_upstream_method_is_the_one_the_patch_was_written_for() -> None:
    """When Metaflow changes the method, this fails: re-read it, port or drop the fix, then
    update PATCHED_VERSIONS and UPSTREAM_SHA256."""
    digest = hashlib.sha256(_upstream_source().encode()).hexdigest()
    assert digest == metaflow_patches.UPSTREAM_SHA256
    assert metaflow.__version__ in metaflow_patches.PATCHED_VERSIONS


def test_local_cards_follow_the_datastore(monkeypatch: pytest.MonkeyPatch) -> None:
    """CARD_LOCALROOT first, else the configured datastore's card folder."""
    monkeypatch.setattr(metaflow_config, "CARD_LOCALROOT", None)
    monkeypatch.setattr(metaflow_config, "DATASTORE_SYSROOT_LOCAL", "/shared/mf")
    assert metaflow_patches.patch_card_root()
    root = card_datastore.CardDatastore.get_storage_root("local")
    assert root == "/shared/mf/.metaflow/mf.cards"
    monkeypatch.setattr(metaflow_config, "CARD_LOCALROOT", "/cards")
    assert card_datastore.CardDatastore.get_storage_root("local") == "/cards"
