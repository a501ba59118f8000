"""Starting, stopping and several workers: in-flight requests finish, no process is left behind."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest


def _partial_request(url: str, body: bytes) -> socket.socket:
    """Send the headers and half the body of a POST /predict; the request is now in flight."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    head = f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body[: len(body) // 2])
    return sock


def _finish(sock: socket.socket, body: bytes) -> tuple[int, dict]:
    sock.sendall(body[len(body) // 2 :])
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head, payload = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(payload)


def _length(data: bytes) -> int:
    match = re.search(rb"content-length: (\d+)", data.split(b"\r\n\r\n", 1)[0], re.I)
    return int(match.group(1)) if match else 0


def _metrics_add_up_over_workers(server, workers: int) -> None:
    for _ in range(12):  # a fresh connection each time, so every worker gets some
        assert (
            httpx.post(f"{server.url}/predict", json={"instances": [[0.0] * 8]}).status_code == 200
        )
    text = httpx.get(f"{server.url}/metrics").text  # the counts are shared as they happen
    assert re.search(rf"^lapp_workers {workers}\.0$", text, re.M), text
    assert re.search(
        r'^lapp_requests_total\{method="POST",path="/predict",status="200"\} 12\.0$', text, re.M
    ), text


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGTERM, 2), (signal.SIGINT, 1)])
def test_signal_finishes_in_flight_requests_and_leaves_no_process(
    start_server, trained_run, sig, workers
):
    server = start_server([f"run_dir={trained_run}", f"serve.workers={workers}"])
    family = [
        server.proc.pid,
        *(c.pid for c in psutil.Process(server.proc.pid).children(recursive=True)),
    ]
    assert len(family) >= workers + (1 if workers > 1 else 0)
    if workers > 1:  # several workers share the port, and /metrics adds their counts up
        _metrics_add_up_over_workers(server, workers)
    body = json.dumps({"instances": [[0.5] * 8]}).encode()
    in_flight = _partial_request(server.url, body)
    time.sleep(0.3)  # the server has read the headers
    server.proc.send_signal(sig)
    time.sleep(0.5)  # shutdown has begun: no new connections ...
    status, answer = _finish(in_flight, body)  # ... but the in-flight request completes
    assert status == 200 and len(answer["predictions"]) == 1
    assert server.stop(sig) == 0, server.output[-2000:]
    time.sleep(0.2)
    alive = [
        pid
        for pid in family
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], server.output[-2000:]
    assert "server stopped" in server.output


@pytest.mark.slow
def test_a_worker_whose_supervisor_dies_shuts_itself_down(start_server, trained_run):
    server = start_server([f"run_dir={trained_run}", "serve.workers=2"])
    workers = psutil.Process(server.proc.pid).children(recursive=True)
    share_dir = next(
        p.environ()["PROMETHEUS_MULTIPROC_DIR"]
        for p in workers
        if "spawn_main" in " ".join(p.cmdline())
    )
    server.proc.kill()  # SIGKILL: the supervisor cannot stop its workers itself
    server.proc.wait(10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
    assert not Path(share_dir).exists()  # the workers removed the metrics directory


def test_a_busy_port_is_a_clear_error(trained_run, tmp_path):
    from tests.conftest import run_lapp

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_lapp(
            ["serve", f"run_dir={trained_run}", f"serve.port={port}"], tmp_path, timeout=60
        )
    assert result.returncode != 0
    assert f"cannot bind 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def _sample(text: str, pattern: str) -> float | None:
    match = re.search(rf"^{pattern} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_a_killed_worker_leaves_the_live_gauges_keeps_its_counts_and_no_directory(
    start_server, trained_run
):
    server = start_server([f"run_dir={trained_run}", "serve.workers=2"])
    workers = [
        p
        for p in psutil.Process(server.proc.pid).children()
        if "spawn_main" in " ".join(p.cmdline())  # not multiprocessing's resource tracker
    ]
    assert len(workers) == 2
    share_dir = workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"]
    predict = r'lapp_requests_total\{method="POST",path="/predict",status="200"\}'
    for _ in range(6):
        assert httpx.post(f"{server.url}/predict", json={"instances": [[0.0] * 8]}).is_success
    workers[0].kill()
    workers[0].wait(10)
    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline:  # uvicorn starts a new worker in its place
        try:
            if httpx.post(f"{server.url}/predict", json={"instances": [[0.0] * 8]}).is_success:
                text = httpx.get(f"{server.url}/metrics").text
        except httpx.TransportError:
            pass
        live = len(psutil.Process(server.proc.pid).children()) - 1
        if live == 2 and _sample(text, "lapp_workers") == 2:
            break
        time.sleep(0.3)
    assert _sample(text, "lapp_workers") == 2, text  # the dead worker no longer counts ...
    assert _sample(text, predict) >= 7, text  # ... but the requests it answered still do
    assert server.stop(signal.SIGTERM) == 0, server.output[-2000:]
    assert not Path(share_dir).exists()


def test_a_multiprocess_directory_from_the_environment_is_not_used(start_server, trained_run):
    missing = "/nonexistent/lapp-prometheus"  # would make prometheus_client fail on every write
    server = start_server([f"run_dir={trained_run}"], {"PROMETHEUS_MULTIPROC_DIR": missing})
    assert httpx.post(f"{server.url}/predict", json={"instances": [[0.0] * 8]}).is_success
    text = httpx.get(f"{server.url}/metrics").text
    assert _sample(text, r'lapp_requests_total\{method="POST",path="/predict",status="200"\}') == 1
