"""The request path in-process: time limits, the queue, and metrics counting."""

from __future__ import annotations

import asyncio
import json

import pytest
from omegaconf import OmegaConf
from starlette.requests import Request

from lightning_app.config.schemas import ServerConf
from lightning_app.errors import RequestError
from lightning_app.serving.service import Service
from lightning_app.serving.settings import ServeSettings

BODY = json.dumps({"instances": [[0.1] * 8]}).encode()


def _service(trained_run, **limits) -> Service:
    conf = OmegaConf.merge(OmegaConf.structured(ServerConf), {"limits": limits})
    return Service(ServeSettings.from_config(conf, str(trained_run / "model.onnx")))


def _request(chunks: list[bytes], stall: bool = False) -> Request:
    """A POST /predict whose body arrives in ``chunks`` (and then never ends, if ``stall``)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [],
        "query_string": b"",
    }
    queue = list(chunks)

    async def receive():
        if queue:
            return {"type": "http.request", "body": queue.pop(0), "more_body": bool(queue) or stall}
        await asyncio.sleep(3600)  # a client that stopped sending

    return Request(scope, receive)


def _run(service: Service, request: Request):
    async def main():
        await service.batcher.start()
        try:
            return await service.predict(request)
        finally:
            await service.batcher.stop()

    return asyncio.run(main())


def test_a_body_that_stops_arriving_is_408(trained_run):
    service = _service(trained_run, request_timeout_s=0.2)
    with pytest.raises(RequestError) as err:
        _run(service, _request([BODY[:10]], stall=True))
    assert err.value.status == 408 and "did not arrive within 0.2s" in str(err.value)


def test_an_answer_later_than_the_time_limit_is_503(trained_run):
    service = _service(trained_run, request_timeout_s=0.2)
    slow_run = service.batcher._run

    def slow(x):
        import time

        time.sleep(0.5)
        return slow_run(x)

    service.batcher._run = slow
    with pytest.raises(RequestError) as err:
        _run(service, _request([BODY]))
    assert err.value.status == 503 and "request_timeout_s=0.2" in str(err.value)


def test_a_chunked_body_over_the_limit_is_413(trained_run):
    service = _service(trained_run, max_body_bytes=1024)
    with pytest.raises(RequestError) as err:
        _run(service, _request([b" " * 600, b" " * 600, BODY]))
    assert err.value.status == 413


def test_a_good_request_is_counted_as_one_model_call(trained_run):
    service = _service(trained_run)
    response = _run(service, _request([BODY[:7], BODY[7:]]))
    assert response.status_code == 200
    assert len(json.loads(response.body)["predictions"]) == 1
    assert service.metrics.value("lapp_instances_total") == 1
    assert service.metrics.value("lapp_batch_size_bucket", {"le": "1.0"}) == 1
    assert service.metrics.value("lapp_batch_size_count") == 1
