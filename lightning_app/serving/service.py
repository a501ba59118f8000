"""One worker's serving state and request logic: model, parser, batcher, metrics.

:class:`Service` turns a ``POST /predict`` body into predictions (parse, validate, batch, run,
format) and describes the model for ``GET /metadata``; :mod:`lightning_app.serving.server`
wires it to HTTP. Import cost: numpy, onnxruntime, starlette (no torch, no Lightning).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lightning_app.errors import RequestError
from lightning_app.serving.audio_requests import is_upload, upload_payload
from lightning_app.serving.batching import MicroBatcher
from lightning_app.serving.guard import read_body
from lightning_app.serving.inputs import build_parser
from lightning_app.serving.predict_io import json_error
from lightning_app.serving.predictions import format_predictions
from lightning_app.serving.schemas_http import REQUEST_KEYS
from lightning_app.serving.served_model import OnnxModel
from lightning_app.serving.server_metrics import ServerMetrics
from lightning_app.serving.settings import ServeSettings

log = logging.getLogger("lightning_app.serve")


def _dynamic_length(parser: Any) -> bool:
    """Whether the parser encodes texts to their batch's longest length (not max_len)."""
    encoder = getattr(parser, "text_encoder", None)
    return bool(getattr(encoder, "kwargs", {}).get("longest"))


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
            inline_s=batching.inline_call_ms / 1000,
            pad_value=self.parser.pad_id if _dynamic_length(self.parser) else None,
        )
        self.ready = False
        self.num_classes = len(self.info.class_names)

    def parse_request(
        self, body: bytes, content_type: str | None = None, query: Any = None
    ) -> tuple[Any, int, bool]:
        """A raw body -> (input array, top_k, probabilities), or a 400/413/415/422 RequestError.

        Audio models also take uploads (a WAV body, or multipart/form-data files), with
        ``top_k`` and ``probabilities`` in the ``query`` string (lightning_app.serving.audio_requests).
        """
        try:
            if is_upload(content_type, self.parser):
                payload = upload_payload(self.parser, body, content_type, query or {})
            else:
                payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            # ValueError: JSONDecodeError, and an integer literal past Python's digit limit
            raise RequestError(f"malformed JSON body: {json_error(err)}", status=400) from None
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
                    "header_timeout_s": conf.limits.header_timeout_s,
                    "max_connections": conf.limits.max_connections,
                },
                "top_k": conf.top_k,
                "auth": self.settings.api_key is not None,
            },
        }


async def every_second(service: Service) -> None:
    """Refresh the queue gauge; stop this worker if its supervisor is gone."""
    parent = service.settings.parent_pid
    while True:
        await asyncio.sleep(1.0)
        service.metrics.set_queued(service.batcher.queued)
        if parent and os.getppid() != parent:
            log.warning("the supervising process %s is gone: shutting down", parent)
            if service.settings.share_dir:  # the supervisor can no longer remove it
                shutil.rmtree(service.settings.share_dir, ignore_errors=True)
            os.kill(os.getpid(), signal.SIGTERM)
            return
