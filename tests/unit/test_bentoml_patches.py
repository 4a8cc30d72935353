"""The BentoML patch is tied to the upstream code it replaces."""

from __future__ import annotations

import ast
import hashlib
import inspect
import logging

import bentoml
import pytest
from bentoml._internal.server.http import traffic

from flowship import bentoml_patches


def _upstream_call_source() -> str:
    """The installed BentoML's `TimeoutMiddleware.__call__`, read from its module's source
    (the class attribute may already be patched in this process)."""
    source = inspect.getsource(traffic)
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == "TimeoutMiddleware":
            for item in node.body:
                if isinstance(item, ast.AsyncFunctionDef) and item.name == "__call__":
                    return str(ast.get_source_segment(source, item))
    raise AssertionError("BentoML no longer defines TimeoutMiddleware.__call__")


def test_upstream_method_is_the_one_the_patch_was_written_for() -> None:
    """When BentoML changes the method the patch replaces, this fails: re-read the new
    upstream code, port the fix (or drop it if upstream fixed the timer), then update
    PATCHED_VERSIONS and UPSTREAM_SHA256."""
    digest = hashlib.sha256(_upstream_call_source().encode()).hexdigest()
    assert digest == bentoml_patches.UPSTREAM_SHA256
    assert bentoml.__version__ in bentoml_patches.PATCHED_VERSIONS


def test_patch_applies_only_to_the_versions_it_was_written_for(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another BentoML version is left as it is, with a warning naming the versions."""
    original = traffic.TimeoutMiddleware.__call__
    monkeypatch.setattr(traffic.TimeoutMiddleware, "__call__", original)
    monkeypatch.setattr(bentoml, "__version__", "9.9.9")
    with caplog.at_level(logging.WARNING):
        assert not bentoml_patches.patch_timeout_middleware()
    assert traffic.TimeoutMiddleware.__call__ is original
    assert "9.9.9 is not one of 1.4.39" in caplog.text
    monkeypatch.setattr(bentoml, "__version__", bentoml_patches.PATCHED_VERSIONS[0])
    assert bentoml_patches.patch_timeout_middleware()
    assert traffic.TimeoutMiddleware.__call__ is bentoml_patches._timeout_middleware_call


def test_the_error_schema_patch_is_tied_to_upstream() -> None:
    """When BentoML changes how it documents errors, this fails: check whether a 400's
    `detail` is still documented as a string only, then update ERROR_SCHEMA_SHA256."""
    from bentoml._internal.service.openapi import utils

    source = inspect.getsource(utils)
    tree = ast.parse(source)
    function = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "exception_schema"
    )
    digest = hashlib.sha256(str(ast.get_source_segment(source, function)).encode()).hexdigest()
    assert digest == bentoml_patches.ERROR_SCHEMA_SHA256


def test_the_patched_error_schema_documents_a_list_of_errors() -> None:
    """After the patch, a 400's `detail` may be a string or a list (what BentoML sends for a
    request that fails validation)."""
    from bentoml._internal.service.openapi import utils

    assert bentoml_patches.patch_error_schema()
    detail = utils.exception_components_schema()["InvalidArgument"].properties["detail"]
    assert [s.type for s in detail.oneOf] == ["string", "array"]
