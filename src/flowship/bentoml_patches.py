"""A fix to BentoML's `TimeoutMiddleware`, applied only to the BentoML releases it was written
against (`PATCHED_VERSIONS`); `tests/unit/test_bentoml_patches.py` fails when the upstream
method it replaces changes (`UPSTREAM_SHA256`), so a pin bump re-checks it.

Upstream schedules `loop.call_later(timeout, ...)` per request and never cancels it, so each
request's future, context and tracing span live on for the whole `traffic.timeout`: at
3,000 req/s and 30 s that is ~90,000 requests' objects, and every full garbage collection
scans them all. Those collections stalled a worker for 50-500 ms every few seconds, which
was the whole p99 tail (`py-spy`, and `gc.callbacks` timing each collection). Behaviour is
otherwise unchanged: a request still gets a 504 after `timeout` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

PATCHED_VERSIONS = ("1.4.39",)
# sha256 of the source of `bentoml._internal.server.http.traffic.TimeoutMiddleware.__call__`
# in the versions above (the test computes it from the installed BentoML)
UPSTREAM_SHA256 = "12e0d26839288a4659bf2b0974eb464e041393a8578d90b2d3c335699cc5b0f7"

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
