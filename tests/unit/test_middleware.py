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


def _request(app: Any, path: str = "/predict", method: str = "POST", **headers: str) -> Any:
    """Run `app` on one request; the response's status, headers and body, and the key id the
    inner app saw."""
    from flowship.middleware import KEY_ID

    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen["key_id"] = KEY_ID.get()
        await _echo(scope, receive, send)

    scope = {
        "type": "http",
        "path": path,
        "method": method,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(inner)(scope, receive, send))
    start = sent[0]
    return (
        start["status"],
        dict(start["headers"]),
        b"".join(m.get("body", b"") for m in sent[1:]),
        seen,
    )


def _keys() -> Any:
    from flowship.auth import KeyRing, key_line

    return KeyRing.parse(key_line("alice", "k-alice") + "\n" + key_line("bob", "k-bob"), "test")


def test_a_valid_key_passes_and_names_its_id() -> None:
    """A known key reaches the service, which sees its id (for the prediction log)."""
    from flowship.middleware import ApiKeyAuth

    status, _, _, seen = _request(
        lambda app: ApiKeyAuth(app, _keys()), authorization="Bearer k-bob"
    )
    assert status == 200 and seen["key_id"] == "bob"


def test_a_missing_or_wrong_key_is_401_saying_nothing_of_the_keys() -> None:
    """No key, a wrong key, another scheme: 401 with WWW-Authenticate; no key id leaks."""
    from flowship.middleware import ApiKeyAuth

    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic k-bob"}):
        status, sent_headers, body, seen = _request(lambda app: ApiKeyAuth(app, _keys()), **headers)
        assert status == 401, headers
        assert sent_headers[b"www-authenticate"] == b'Bearer realm="flowship"'
        assert b"alice" not in body and b"bob" not in body and seen == {}


def test_probes_and_open_paths_need_no_key() -> None:
    """/livez, /readyz, /healthz always; /metrics only when listed as open."""
    from flowship.middleware import ApiKeyAuth

    for path in ("/livez", "/readyz", "/healthz", "/metrics"):
        status, *_ = _request(lambda app: ApiKeyAuth(app, _keys(), ["/metrics"]), path, "GET")
        assert status == 200, path
    status, *_ = _request(lambda app: ApiKeyAuth(app, _keys()), "/metrics", "GET")
    assert status == 401
    status, *_ = _request(lambda app: ApiKeyAuth(app, _keys(), ["/metrics"]), "/docs.json", "GET")
    assert status == 401


def test_only_json_bodies_are_read() -> None:
    """A form, a file upload without a boundary, plain text, a malformed type: 415 naming the
    expected type; JSON (with parameters) and no type at all go through."""
    from flowship.middleware import JsonOnly

    for declared in (
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "text/plain",
        ";;",
    ):
        status, _, body, _ = _request(JsonOnly, content_type=declared)
        assert status == 415 and b"application/json" in body, declared
    for declared in ("application/json", "application/JSON; charset=utf-8"):
        assert _request(JsonOnly, content_type=declared)[0] == 200
    assert _request(JsonOnly)[0] == 200
    assert _request(JsonOnly, "/metadata", "GET", content_type="text/plain")[0] == 200
