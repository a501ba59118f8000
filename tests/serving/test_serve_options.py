"""`lapp serve` options that change behaviour: batching off, the int8 variant, readiness during
warm-up, the warning for an open service beyond loopback, slow bodies and shutdown deadlines."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket

import httpx
import pytest

from tests.conftest import TINY, compose


def _settings(artifact, overrides=()):
    from lightning_app.serving.settings import ServeSettings

    cfg = compose("serve", [f"artifact={artifact}", *overrides])
    return ServeSettings.from_config(cfg.serve, str(artifact))


async def _with_app(app, client_fn, started: asyncio.Event | None = None):
    """Run ``client_fn(client)`` against ``app`` in this loop, inside its lifespan."""
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        app.app.router.lifespan_context(app.app),
    ):
        return await client_fn(client)


def _call_sizes(app) -> list[int]:
    """Record the instance count of every model call the batcher of ``app`` makes."""
    batcher, sizes = app.app.state.service.batcher, []
    run = batcher._run

    def spy(x):
        sizes.append(len(x))
        return run(x)

    batcher._run = spy
    return sizes


@pytest.mark.parametrize("enabled", [True, False])
def test_batching_off_gives_each_request_its_own_model_call(trained_run, enabled):
    from lightning_app.serving.server import create_app

    settings = _settings(
        trained_run / "model.onnx",
        [f"serve.batching.enabled={str(enabled).lower()}", "serve.batching.max_wait_ms=50"],
    )
    app = create_app(settings)
    sizes = _call_sizes(app)

    async def burst(client):
        body = {"instances": [[0.1] * 8]}
        return await asyncio.gather(*(client.post("/predict", json=body) for _ in range(16)))

    answers = asyncio.run(_with_app(app, burst))
    assert [a.status_code for a in answers] == [200] * 16
    assert sum(sizes) == 16
    if enabled:
        assert max(sizes) > 1  # 16 concurrent requests within 50 ms share calls
    else:
        assert sizes == [1] * 16  # one call per request, however many wait


def test_ready_is_503_until_the_warm_up_has_finished(trained_run):
    """Not ready before the start-up (model warm-up) nor after shutdown; alive throughout."""
    from lightning_app.serving.server import create_app

    app = create_app(_settings(trained_run / "model.onnx"))
    service = app.app.state.service
    ready_while_warming = []
    warmup = service.model.warmup

    def watched_warmup():
        ready_while_warming.append(service.ready)
        warmup()

    service.model.warmup = watched_warmup

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            before = [await client.get("/ready"), await client.get("/health")]
            async with app.app.router.lifespan_context(app.app):
                during = await client.get("/ready")
            after = await client.get("/ready")
            return before, during, after

    (before, health), during, after = asyncio.run(main())
    assert before.status_code == 503 and before.json()["status"] == "not ready"
    assert health.status_code == 200
    assert ready_while_warming == [False]  # ready only once the warm-up has run
    assert during.status_code == 200
    assert after.status_code == 503


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory):
    from lightning_app.recipes.train import train

    run_dir = tmp_path_factory.mktemp("int8") / "run"
    train(
        compose(
            "train",
            [*TINY, "deployment=onnx", "compression=quantize_dynamic", f"paths.run_dir={run_dir}"],
        )
    )
    assert (run_dir / "model.int8.onnx").is_file()
    return run_dir


def _serve_in_process(monkeypatch, overrides):
    """`lapp serve OVERRIDES` through the serve recipe, stopped where it would start serving."""
    from lightning_app.recipes import serve as serve_recipe
    from lightning_app.serving import launch

    seen = {}
    monkeypatch.setattr(launch, "run_server", lambda s, m: seen.update(settings=s, model=m))
    serve_recipe.serve(compose("serve", overrides))
    return seen["settings"], seen["model"]


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_variant_selects_the_artifact_served(int8_run, monkeypatch, variant):
    from starlette.testclient import TestClient

    from lightning_app.serving.server import create_app

    settings, model = _serve_in_process(monkeypatch, [f"run_dir={int8_run}", f"variant={variant}"])
    expected = "model.int8.onnx" if variant == "int8" else "model.onnx"
    assert model.info.path.name == expected and settings.artifact.endswith(expected)
    with TestClient(create_app(settings, model)) as client:
        meta = client.get("/metadata").json()
        assert json.dumps(meta).count(expected) >= 1
        answer = client.post("/predict", json={"instances": [[0.2] * 8, [-0.3] * 8]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
    ops = {n.op_type for n in __import__("onnx").load(str(model.info.path)).graph.node}
    assert any("Integer" in op or "Quant" in op for op in ops) is (variant == "int8")


@pytest.mark.parametrize(
    ("host", "key", "warned"),
    [("0.0.0.0", None, True), ("0.0.0.0", "k" * 12, False), ("127.0.0.1", None, False)],
)
def test_no_key_beyond_loopback_is_warned(trained_run, monkeypatch, caplog, host, key, warned):
    monkeypatch.delenv("LAPP_API_KEY", raising=False)
    if key:
        monkeypatch.setenv("LAPP_API_KEY", key)
    with caplog.at_level(logging.WARNING):
        _serve_in_process(monkeypatch, [f"run_dir={trained_run}", f"serve.host={host}"])
    text = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert ("without an API key" in text) is warned, text


def _partial(url: str, body: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body[: len(body) // 2])
    return sock


def _status(sock: socket.socket) -> int | None:
    """The status code of the response on ``sock``, or None if it closed without one."""
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(4096)
        except OSError:  # reset by the server
            return None
        if not chunk:
            return None
        data += chunk
    return int(data.split()[1])


def test_a_body_slower_than_the_timeout_gets_408_over_http(start_server, trained_run):
    server = start_server([f"run_dir={trained_run}", "serve.limits.request_timeout_s=1"])
    body = json.dumps({"instances": [[0.5] * 8]}).encode()
    sock = _partial(server.url, body)  # the rest never comes
    try:
        assert _status(sock) == 408
    finally:
        sock.close()
    ok = httpx.post(f"{server.url}/predict", json={"instances": [[0.5] * 8]}, timeout=30)
    assert ok.status_code == 200  # the service goes on


def test_shutdown_gives_up_on_a_stuck_request_after_graceful_shutdown_s(start_server, trained_run):
    server = start_server(
        [
            f"run_dir={trained_run}",
            "serve.graceful_shutdown_s=1",
            "serve.limits.request_timeout_s=300",  # only the shutdown deadline can end it
        ]
    )
    body = json.dumps({"instances": [[0.5] * 8]}).encode()
    sock = _partial(server.url, body)  # in flight for good: the rest never comes
    try:
        # Without the deadline the server would wait for the request (up to 300 s); it exits
        # well within the 60 s allowed here, without answering the request.
        code = server.stop(signal.SIGTERM, timeout=60)
        assert _status(sock) != 200, "a stuck request cannot have succeeded"
    finally:
        sock.close()
    assert code == 0, server.output[-2000:]
    assert "server stopped" in server.output
