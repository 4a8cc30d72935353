"""The Metaflow patches are tied to the upstream code they replace, put cards by the
datastore, and render a finished task's card once."""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
from typing import Any

import metaflow
import pytest
from metaflow import metaflow_config
from metaflow.plugins.cards import card_datastore, card_decorator

from flowship import metaflow_patches


def _upstream_source(dotted: str) -> str:
    module_name, class_name, method = dotted.rsplit(".", 2)
    source = inspect.getsource(importlib.import_module(module_name))
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    return str(ast.get_source_segment(source, item))
    raise AssertionError(f"Metaflow no longer defines {class_name}.{method}")


@pytest.mark.parametrize("dotted", sorted(metaflow_patches.UPSTREAM_SHA256))
def test_upstream_method_is_the_one_the_patch_was_written_for(dotted: str) -> None:
    """When Metaflow changes a method, this fails: re-read it, port or drop the fix, then
    update PATCHED_VERSIONS and UPSTREAM_SHA256."""
    digest = hashlib.sha256(_upstream_source(dotted).encode()).hexdigest()
    assert digest == metaflow_patches.UPSTREAM_SHA256[dotted]
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


class _Creator:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create(self, **options: Any) -> None:
        self.calls.append(options)


def _finished(ok: bool) -> tuple[_Creator, list[str]]:
    deco = object.__new__(card_decorator.CardDecorator)
    creator, cleaned = _Creator(), []
    deco.card_creator = creator
    deco._card_uuid, deco._user_set_card_id, deco._is_runtime_card = "u1", "gate", True
    deco.attributes, deco.card_options, deco._logger = {"type": "html"}, {}, print
    deco._cleanup = cleaned.append  # type: ignore[method-assign]
    deco.task_finished("gate", None, None, ok, 0, 0)
    return creator, cleaned


def test_a_finished_task_renders_its_card_once() -> None:
    """One final render, no final refresh; a failed task renders nothing; both clean up."""
    assert metaflow_patches.patch_final_card_refresh()
    creator, cleaned = _finished(ok=True)
    assert [(c["mode"], c["final"], c["card_uuid"]) for c in creator.calls] == [
        ("render", True, "u1")
    ]
    assert creator.calls[0]["runtime_card"] is True and cleaned == ["gate"]
    creator, cleaned = _finished(ok=False)
    assert creator.calls == [] and cleaned == ["gate"]


def test_an_unknown_metaflow_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another Metaflow version: nothing is replaced, and a warning says what to re-check."""

    def upstream(*args: Any) -> None:
        pass

    monkeypatch.setattr(card_decorator.CardDecorator, "task_finished", upstream)
    monkeypatch.setattr(metaflow, "__version__", "9.9.9")
    assert not metaflow_patches.patch_final_card_refresh()
    assert "re-check flowship.metaflow_patches" in caplog.text
    assert card_decorator.CardDecorator.task_finished is upstream
