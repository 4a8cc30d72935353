"""Fixes to BentoML, applied only to the BentoML releases they were written against
(`PATCHED_VERSIONS`); `tests/unit/test_bentoml_patches.py` fails when the upstream code they
replace changes (`UPSTREAM_SHA256`, `ERROR_SCHEMA_SHA256`), so a pin bump re-checks them.

1. `TimeoutMiddleware`:
Upstream schedules `loop.call_later(timeout, ...)` per request and never cancels it, so each
request's future, context and tracing span live on for the whole `traffic.timeout`: at
3,000 req/s and 30 s that is ~90,000 requests' objects, and every full garbage collection
scans them all. Those collections stalled a worker for 50-500 ms every few seconds, which
was the whole p99 tail (`py-spy`, and `gc.callbacks` timing each collection). Behaviour is
otherwise unchanged: a request still gets a 504 after `timeout` seconds.

2. The error schema in `/docs.json`: BentoML documents a 400's `detail` as a string, but a
request that fails validation gets pydantic's list of errors there, so every client or fuzzer
that validates answers against the documented schema (schemathesis does) finds a violation on
every bad request. The patched schema documents `detail` as a string or a list of objects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

PATCHED_VERSIONS = ("1.4.39",)
# sha256 of the source of `bentoml._internal.server.http.traffic.TimeoutMiddleware.__call__`
# in the versions above (the test computes it from the installed BentoML)
UPSTREAM_SHA256 = "12e0d26839288a4659bf2b0974eb464e041393a8578d90b2d3c335699cc5b0f7"
# sha256 of the source of `bentoml._internal.service.openapi.utils.exception_schema`
ERROR_SCHEMA_SHA256 = "18e264f556c2cb7ad77b9c08960c51e24de94ca41b2e08e174708980b86e182f"

_log = logging.getLogger(__name__)


async def _timeout_middleware_call(self: Any, scope: Any, receive: Any, send: Any) -> None:
    """BentoML 1.4's `TimeoutMiddleware.__call__`, with its timer cancelled when the request
    ends."""
    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message: Any) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            from starlette.responses import JSONResponse

            message = f"Not able to process the request in {self.timeout} seconds"
            await JSONResponse({"error": message}, status_code=504)(scope, receive, send)
    else:
        await fut
    finally:
        timer.cancel()


def patch_timeout_middleware() -> bool:
    """Replace `TimeoutMiddleware.__call__` when the installed BentoML is one it was written
    for; returns whether it did (otherwise it logs a warning and leaves BentoML as it is)."""
    import bentoml
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    if bentoml.__version__ not in PATCHED_VERSIONS:
        _log.warning(
            "BentoML %s is not one of %s: its TimeoutMiddleware is left unpatched (p99 latency "
            "may grow under load); re-check flowship.bentoml_patches for this version",
            bentoml.__version__,
            ", ".join(PATCHED_VERSIONS),
        )
        return False
    TimeoutMiddleware.__call__ = _timeout_middleware_call  # type: ignore[method-assign]
    return True


def _exception_schema(ex: Any) -> Any:
    """BentoML 1.4's `exception_schema`, with `detail` documented as BentoML sends it."""
    from bentoml._internal.service.openapi.specification import Schema
    from bentoml._internal.service.openapi.utils import FilledExceptionSchema

    error_properties: dict[str, Any] = {
        "error": Schema(title="Message", type="string"),
        "detail": Schema(
            title="Error Detail",
            oneOf=[Schema(type="string"), Schema(type="array", items=Schema(type="object"))],
        ),
    }
    yield FilledExceptionSchema(
        title=ex.__name__,
        type="object",
        description=ex.error_code.phrase,
        properties=error_properties,
        required=["error"],
    )


def patch_error_schema() -> bool:
    """Document a 400's `detail` as a string or a list of errors (see 2. above) when the
    installed BentoML is one this was written for; returns whether it did."""
    import bentoml
    from _bentoml_sdk.service import openapi
    from bentoml._internal.service.openapi import utils

    if bentoml.__version__ not in PATCHED_VERSIONS:
        _log.warning(
            "BentoML %s is not one of %s: /docs.json keeps its error schema; re-check "
            "flowship.bentoml_patches for this version",
            bentoml.__version__,
            ", ".join(PATCHED_VERSIONS),
        )
        return False
    utils.exception_schema = openapi.exception_schema = _exception_schema
    utils.exception_components_schema.cache_clear()
    return True
