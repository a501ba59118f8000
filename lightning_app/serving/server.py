"""The HTTP service: FastAPI over a :class:`Service` (ONNX Runtime with micro-batching).

Endpoints: ``POST /predict``, ``GET /health`` (alive), ``GET /ready`` (model loaded, batcher
running), ``GET /metadata``, ``GET /metrics`` (Prometheus), ``/docs`` (OpenAPI). Every client
error answers a 4xx JSON body ``{"error": {"status", "message"}}``; nothing a client sends stops
the service. Import cost: fastapi, numpy, onnxruntime (no torch, no Lightning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lightning_app.errors import RequestError
from lightning_app.serving.guard import Guard, error_response
from lightning_app.serving.schemas_http import (
    ERROR_RESPONSES,
    Metadata,
    PredictResponse,
    Status,
    request_body_doc,
)
from lightning_app.serving.served_model import OnnxModel
from lightning_app.serving.service import Service, every_second
from lightning_app.serving.settings import ServeSettings

log = logging.getLogger("lightning_app.serve")


def create_app(settings: ServeSettings, model: OnnxModel | None = None) -> Guard:
    """The ASGI application serving ``settings.artifact`` (or an already loaded ``model``).

    A :class:`Guard` in front of the FastAPI app; the FastAPI app is its ``app`` attribute.
    """
    service = Service(settings, model)
    conf = settings.serve

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.model.warmup()
        await service.batcher.start()
        ticker = asyncio.create_task(every_second(service))
        service.ready = True
        log.info("model %s ready (%s)", service.info.version, service.info.path)
        try:
            yield
        finally:
            service.ready = False
            await service.batcher.stop()
            ticker.cancel()
            service.metrics.publish(force=True)

    docs = conf.docs
    app = FastAPI(
        title="lapp model server",
        version=service.info.version,
        description=f"Predictions of `{service.info.path.name}` ({service.info.task}). Input: {service.parser.expected()}.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.service = service

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, err: RequestError) -> Response:
        return error_response(err.status, str(err))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
        return error_response(err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> Response:
        return error_response(
            422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, err: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return error_response(500, f"internal error: {type(err).__name__}")

    example = {"instances": [service.parser.example()]}

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=request_body_doc(example),
        summary="Predict one or many instances",
    )
    async def predict(request: Request) -> Response:
        # Documents the endpoint; requests are answered by the Guard's fast path, the same way.
        return await service.predict(request)

    @app.get("/health", response_model=Status, summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        response_model=Status,
        responses={503: {"model": Status}},
        summary="The model is loaded",
    )
    async def ready() -> Response:
        if service.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    @app.get(
        "/metadata",
        response_model=Metadata,
        responses={401: ERROR_RESPONSES[401]},
        summary="Input spec, classes, version, test metrics",
    )
    async def metadata() -> dict[str, Any]:
        return service.metadata()

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        service.metrics.queued = service.batcher.queued
        return Response(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return Guard(app, service)


def app_from_env() -> Guard:
    """App factory for worker processes: settings come from the supervisor's environment."""
    settings = ServeSettings.from_env()
    logging.basicConfig(
        level=settings.serve.log_level.value.upper(),
        format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s",
    )
    return create_app(settings)
