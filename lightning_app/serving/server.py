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

from fastapi import APIRouter, FastAPI, Request
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
from lightning_app.serving.server_metrics import CONTENT_TYPE
from lightning_app.serving.service import Service, every_second
from lightning_app.serving.settings import ServeSettings

log = logging.getLogger("lightning_app.serve")


def _lifespan(service: Service) -> Any:
    """Start-up and shut-down of the service around the app's life: warm up, batch, tick."""

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

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers ``{"error": {"status", "message"}}``; unknown ones a logged 500."""

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


def _predict_route(router: APIRouter, service: Service) -> None:
    """``POST /predict``, documented here; requests are answered by the Guard's fast path."""
    example = {"instances": [service.parser.example()]}

    @router.post(
        "/predict",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=request_body_doc(example),
        summary="Predict one or many instances",
    )
    async def predict(request: Request) -> Response:
        return await service.predict(request)


def _status_routes(router: APIRouter, service: Service) -> None:
    """``GET /health`` (the process is alive) and ``GET /ready`` (the model is loaded)."""

    @router.get("/health", response_model=Status, summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        response_model=Status,
        responses={503: {"model": Status}},
        summary="The model is loaded",
    )
    async def ready() -> Response:
        if service.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)


def _info_routes(router: APIRouter, service: Service) -> None:
    """``GET /metadata`` (input spec, classes, version, metrics) and ``GET /metrics``."""

    @router.get(
        "/metadata",
        response_model=Metadata,
        responses={401: ERROR_RESPONSES[401]},
        summary="Input spec, classes, version, test metrics",
    )
    async def metadata() -> dict[str, Any]:
        return service.metadata()

    @router.get("/metrics", response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        service.metrics.set_queued(service.batcher.queued)
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def routes(service: Service) -> APIRouter:
    """Every endpoint of the service, in the order the OpenAPI page lists them."""
    router = APIRouter()
    _predict_route(router, service)
    _status_routes(router, service)
    _info_routes(router, service)
    return router


def create_app(settings: ServeSettings, model: OnnxModel | None = None) -> Guard:
    """The ASGI application serving ``settings.artifact`` (or an already loaded ``model``).

    A :class:`Guard` in front of the FastAPI app; the FastAPI app is its ``app`` attribute.
    """
    service = Service(settings, model)
    docs = settings.serve.docs
    app = FastAPI(
        title="lapp model server",
        version=service.info.version,
        description=f"Predictions of `{service.info.path.name}` ({service.info.task}). Input: {service.parser.expected()}.",
        lifespan=_lifespan(service),
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.service = service
    _add_error_handlers(app)
    app.include_router(routes(service))
    return Guard(app, service)


def app_from_env() -> Guard:
    """App factory for worker processes: settings come from the supervisor's environment."""
    settings = ServeSettings.from_env()
    logging.basicConfig(
        level=settings.serve.log_level.value.upper(),
        format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s",
    )
    return create_app(settings)
