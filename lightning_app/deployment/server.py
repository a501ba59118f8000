"""The HTTP service: FastAPI over one ONNX Runtime session, with dynamic micro-batching.

Endpoints: ``POST /predict``, ``GET /health`` (alive), ``GET /ready`` (model loaded, batcher
running), ``GET /metadata``, ``GET /metrics`` (Prometheus), ``/docs`` (OpenAPI). Every client
error answers a 4xx JSON body ``{"error": {"status", "message"}}``; nothing a client sends stops
the service. Import cost: fastapi, numpy, onnxruntime (no torch, no Lightning).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from lightning_app.audio.requests import is_upload, upload_payload
from lightning_app.deployment.batching import MicroBatcher
from lightning_app.deployment.guard import Guard, error_response, read_body
from lightning_app.deployment.inputs import build_parser
from lightning_app.deployment.predictions import format_predictions
from lightning_app.deployment.schemas_http import (
    ERROR_RESPONSES,
    REQUEST_KEYS,
    Metadata,
    PredictResponse,
    Status,
    request_body_doc,
)
from lightning_app.deployment.served_model import OnnxModel
from lightning_app.deployment.server_metrics import ServerMetrics
from lightning_app.deployment.settings import ServeSettings
from lightning_app.errors import RequestError

log = logging.getLogger("lightning_app.serve")


class Service:
    """Everything one worker serves with: model, input parser, batcher, metrics."""

    def __init__(self, settings: ServeSettings, model: OnnxModel | None = None):
        self.settings, conf = settings, settings.serve
        self.model = model or OnnxModel(settings.artifact, conf.intra_op_threads)
        self.info = self.model.info
        self.parser = build_parser(self.model)
        self.metrics = ServerMetrics(settings.share_dir, self.info.version)
        batching = conf.batching
        self.batcher = MicroBatcher(
            self.model.run,
            max_batch_size=batching.max_batch_size if batching.enabled else 1,
            max_wait_s=batching.max_wait_ms / 1000 if batching.enabled else 0.0,
            max_queue=batching.max_queue,
            on_batch=self.metrics.observe_batch,
        )
        self.ready = False
        self.num_classes = len(self.info.class_names)

    def parse_request(
        self, body: bytes, content_type: str | None = None, query: Any = None
    ) -> tuple[Any, int, bool]:
        """A raw body -> (input array, top_k, probabilities), or a 400/413/415/422 RequestError.

        Audio models also take uploads (a WAV body, or multipart/form-data files), with
        ``top_k`` and ``probabilities`` in the ``query`` string (lightning_app.audio.requests).
        """
        try:
            if is_upload(content_type, self.parser):
                payload = upload_payload(self.parser, body, content_type, query or {})
            else:
                payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RequestError(f"malformed JSON body: {err}", status=400) from None
        except RecursionError:
            raise RequestError("malformed JSON body: nested too deeply", status=400) from None
        if not isinstance(payload, dict) or "instances" not in payload:
            raise RequestError(
                'the body must be a JSON object like {"instances": [...]}; each instance: '
                + self.parser.expected()
            )
        unknown = sorted(set(payload) - set(REQUEST_KEYS))
        if unknown:
            raise RequestError(
                f"unknown key(s) {unknown} in the body; allowed: {list(REQUEST_KEYS)}"
            )
        conf = self.settings.serve
        top_k = payload.get("top_k")
        if top_k is None:
            top_k = min(conf.top_k, self.num_classes or 1)
        elif self.info.task != "classification":
            raise RequestError("top_k: this is a regression model; top_k applies to classification")
        elif (
            isinstance(top_k, bool)
            or not isinstance(top_k, int)
            or not 1 <= top_k <= self.num_classes
        ):
            raise RequestError(f"top_k={top_k!r}: must be an integer from 1 to {self.num_classes}")
        probabilities = payload.get("probabilities")
        if probabilities is None:
            probabilities = conf.probabilities
        elif not isinstance(probabilities, bool):
            raise RequestError(f"probabilities={probabilities!r}: must be true or false")
        x = self.parser.parse(payload["instances"], conf.limits.max_instances)
        return x, top_k, probabilities

    async def predict(self, request: Request) -> Response:
        """``POST /predict``: body -> validated input -> batched model call -> predictions.

        Raises:
            RequestError: 4xx for the client's mistakes; 408 when the body is too slow to
                arrive and 503 when the answer is, past ``limits.request_timeout_s``.
        """
        limits = self.settings.serve.limits
        progress = {"body": False}
        try:
            return await asyncio.wait_for(
                self._predict(request, progress), limits.request_timeout_s
            )
        except asyncio.TimeoutError:
            if not progress["body"]:
                raise RequestError(
                    f"the request body did not arrive within {limits.request_timeout_s:g}s",
                    status=408,
                ) from None
            raise RequestError(
                f"no prediction within serve.limits.request_timeout_s={limits.request_timeout_s:g}s "
                "(server overloaded); retry later",
                status=503,
            ) from None

    async def _predict(self, request: Request, progress: dict[str, bool]) -> Response:
        body = await read_body(request, self.settings.serve.limits.max_body_bytes)
        progress["body"] = True
        x, top_k, probabilities = self.parse_request(
            body, request.headers.get("content-type"), request.query_params
        )
        outputs = await self.batcher.submit(x)
        preds = format_predictions(outputs, self.info, top_k, probabilities)
        content = json.dumps({"predictions": preds, "model_version": self.info.version})
        return Response(content.encode(), media_type="application/json")

    def metadata(self) -> dict[str, Any]:
        conf = self.settings.serve
        return {
            "model_version": self.info.version,
            "artifact": self.info.path.name,
            "task": self.info.task,
            "classes": self.info.class_names,
            "input": self.parser.describe(),
            "metrics": self.info.metrics,
            "config_hash": self.info.config_hash,
            "serving": {
                "workers": conf.workers,
                "batching": {
                    "enabled": conf.batching.enabled,
                    "max_batch_size": conf.batching.max_batch_size,
                    "max_wait_ms": conf.batching.max_wait_ms,
                },
                "limits": {
                    "max_body_bytes": conf.limits.max_body_bytes,
                    "max_instances": conf.limits.max_instances,
                    "request_timeout_s": conf.limits.request_timeout_s,
                },
                "top_k": conf.top_k,
                "auth": self.settings.api_key is not None,
            },
        }


async def _every_second(service: Service) -> None:
    """Publish metrics for sibling workers; stop this worker if its supervisor is gone."""
    parent = service.settings.parent_pid
    while True:
        await asyncio.sleep(1.0)
        service.metrics.queued = service.batcher.queued
        service.metrics.publish()
        if parent and os.getppid() != parent:
            log.warning("the supervising process %s is gone: shutting down", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return


class PredictRoute:
    """``POST /predict`` as a bare ASGI app (an object, so Starlette does not wrap it)."""

    def __init__(self, service: Service):
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = await self.service.predict(Request(scope, receive))
        await response(scope, receive, send)


def create_app(settings: ServeSettings, model: OnnxModel | None = None) -> FastAPI:
    """The FastAPI application serving ``settings.artifact`` (or an already loaded ``model``)."""
    service = Service(settings, model)
    conf = settings.serve

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.model.warmup()
        await service.batcher.start()
        ticker = asyncio.create_task(_every_second(service))
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
    app.add_middleware(Guard, service=service)

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
        return await service.predict(request)

    # The same handler as a bare ASGI route in front of the router: it skips FastAPI's
    # per-request dependency and validation machinery (a third of the time of a small
    # request); the route above still documents it and answers the same.
    app.router.routes.insert(0, Route("/predict", endpoint=PredictRoute(service), methods=["POST"]))

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

    return app


def app_from_env() -> FastAPI:
    """App factory for worker processes: settings come from the supervisor's environment."""
    settings = ServeSettings.from_env()
    logging.basicConfig(
        level=settings.serve.log_level.value.upper(),
        format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s",
    )
    return create_app(settings)
