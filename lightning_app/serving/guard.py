"""What every request passes first: API key, body size, request metrics, the /predict fast path.

A pure ASGI app in front of FastAPI (no per-request task or body buffering, unlike
``BaseHTTPMiddleware``), plus the helpers that read a bounded body and shape every error the
same way.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import Request

from lightning_app.errors import RequestError

log = logging.getLogger("lightning_app.serve")

# Probes and docs stay open when a key is set; everything else needs it.
OPEN_PATHS = frozenset(
    {"/health", "/ready", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error body of the API: ``{"error": {"status": ..., "message": ...}}``."""
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="lapp"'}
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            f"body of {declared} bytes is over serve.limits.max_body_bytes={limit}", status=413
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"body is over serve.limits.max_body_bytes={limit}", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _key_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1")
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return None


class Guard:
    """The server's front door (outermost ASGI app): API key, early 413, counting, fast path.

    ``POST /predict`` goes straight to the service: FastAPI's middleware, routing and
    dependency machinery would cost more CPU than the model on a small request. Everything else
    (probes, metadata, metrics, docs, 404/405) goes to the FastAPI app, which also documents
    ``/predict`` and answers it identically.

    Args:
        app: the FastAPI app.
        service: the worker's :class:`lightning_app.serving.service.Service`.
    """

    def __init__(self, app: Any, service: Any):
        self.app, self.service = app, service
        self.api_key = service.settings.api_key
        self.max_body = service.settings.serve.limits.max_body_bytes

    def _refusal(self, scope: dict[str, Any]) -> JSONResponse | None:
        if self.api_key is not None and scope["path"] not in OPEN_PATHS:
            given = _key_of(scope["headers"])
            if given is None:
                return error_response(
                    401, "an API key is required: send it as X-API-Key or Authorization: Bearer"
                )
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return error_response(401, "wrong API key")
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return error_response(
                        400, f"invalid Content-Length {value.decode('latin-1')!r}"
                    )
                if int(value) > self.max_body:
                    return error_response(
                        413,
                        f"body of {int(value)} bytes is over serve.limits.max_body_bytes={self.max_body}",
                    )
        return None

    async def _predict(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            response = await self.service.predict(Request(scope, receive))
        except RequestError as err:
            response = error_response(err.status, str(err))
        except Exception as err:  # a bug of ours: logged, answered 500, the service goes on
            log.exception("internal error on POST /predict")
            response = error_response(500, f"internal error: {type(err).__name__}")
        await response(scope, receive, send)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises past every handler

        async def send_counted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_counted)
            elif scope["path"] == "/predict" and scope["method"] == "POST":
                await self._predict(scope, receive, send_counted)
            else:
                await self.app(scope, receive, send_counted)
        finally:
            self.service.metrics.observe_request(
                scope["method"], scope["path"], status, time.perf_counter() - started
            )
