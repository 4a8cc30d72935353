"""The limits for benchmarks/serving.py: what HTTP alone costs on this machine, and HTTP with
a web framework.

`app` is a plain ASGI app (no framework, no model) that reads the whole request body and
answers a constant JSON as long as the real answer to that request: the benchmark writes the
answers (by request body length) to the file FLOWSHIP_NOOP_ANSWERS. `fastapi_app` answers the
same constant from a FastAPI endpoint that parses the JSON body (what any Python model server
built on a framework pays before its model runs). Run by the benchmark as
`uvicorn noop:app --workers 2 --app-dir benchmarks/servers` (or `noop:fastapi_app`).
"""

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

_ANSWERS = {
    int(size): answer.encode()
    for size, answer in json.loads(Path(os.environ["FLOWSHIP_NOOP_ANSWERS"]).read_text()).items()
}
_DEFAULT = next(iter(_ANSWERS.values()))
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start or stop
        message = await receive()
        if message["type"].endswith("startup"):
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    answer = _ANSWERS.get(size, _DEFAULT)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": answer})


fastapi_app = FastAPI()


@fastapi_app.post("/predict")
async def predict(request: Request) -> Response:
    body = await request.body()
    json.loads(body)
    return Response(_ANSWERS.get(len(body), _DEFAULT), media_type="application/json")
