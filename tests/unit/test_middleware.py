"""The service's body limit, as an ASGI app sees it."""

from __future__ import annotations

import asyncio
from typing import Any

from flowship.middleware import BodyLimit


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(chunks: list[bytes], length: int | None, limit: int) -> tuple[int, bytes]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {"type": "http", "headers": headers}
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(BodyLimit(_echo, max_bytes=limit)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    status, body = _call([b"x" * 10], length=10, limit=5)
    assert status == 413 and b"max_body_mb" in body


def test_a_chunked_body_over_the_limit_is_413() -> None:
    status, _ = _call([b"xxx", b"xxx"], length=None, limit=5)
    assert status == 413


def test_bodies_within_the_limit_reach_the_app_whole() -> None:
    assert _call([b"abc"], length=3, limit=5) == (200, b"abc")
    assert _call([b"ab", b"cd"], length=None, limit=5) == (200, b"abcd")
