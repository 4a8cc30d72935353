"""ASGI middleware of the service, each refusing a kind of request before BentoML reads it:
callers without a valid API key (401), bodies that are not JSON (415), bodies too large (413)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from contextvars import ContextVar
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Any = ()) -> None:
    """A complete JSON response."""
    payload = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*head, *headers]})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """413 for a request body over `max_bytes`: by its Content-Length before anything is
    read, or, without one (chunked), as soon as the body read so far passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # no length given: read the body here, up to the limit, and hand it on whole
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        megabytes = self.max_bytes / 1024 / 1024
        await send_json(
            send,
            413,
            {
                "error": f"the request body is larger than {megabytes:g} MB "
                "([serving] max_body_mb); send fewer rows per request"
            },
        )


# The key id of the request being served (None without access control), for the prediction log.
KEY_ID: ContextVar[str | None] = ContextVar("flowship_key_id", default=None)
ALWAYS_OPEN = frozenset({"/livez", "/readyz", "/healthz"})  # probes never need a key


class Verifier(Protocol):
    def verify(self, presented: str) -> str | None: ...


class ApiKeyAuth:
    """401 unless the request carries `Authorization: Bearer <key>` of a known key; the
    health probes and `open_paths` are open. The answer says nothing of which keys exist."""

    def __init__(self, app: ASGIApp, keys: Verifier, open_paths: Collection[str] = ()) -> None:
        self.app = app
        self.keys = keys
        self.open = ALWAYS_OPEN | set(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, presented = header.decode("latin-1").partition(" ")
        key_id = self.keys.verify(presented.strip()) if scheme.lower() == "bearer" else None
        if key_id is None:
            await send_json(
                send,
                401,
                {"error": "a valid API key is required: send Authorization: Bearer <key>"},
                [(b"www-authenticate", b'Bearer realm="flowship"')],
            )
            return
        token = KEY_ID.set(key_id)
        try:
            await self.app(scope, receive, send)
        finally:
            KEY_ID.reset(token)


class JsonOnly:
    """415 for a request body whose declared type is not `application/json` (a form, a file
    upload, a malformed type): BentoML would try to parse those and answer 500. A request
    without a Content-Type is read as JSON, as BentoML does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in {"POST", "PUT", "PATCH"}:
            declared = dict(scope.get("headers") or []).get(b"content-type")
            if declared is not None:
                media = declared.decode("latin-1").split(";", 1)[0].strip().lower()
                if media != "application/json":
                    await send_json(
                        send,
                        415,
                        {
                            "error": f"the body's Content-Type is {media or 'empty'!r}; "
                            "send JSON with Content-Type: application/json"
                        },
                    )
                    return
        await self.app(scope, receive, send)
