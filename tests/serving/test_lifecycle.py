"""Starting, stopping and several workers: in-flight requests finish, no process is left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
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
    time.sleep(1.5)  # every worker publishes its counts once a second
    text = httpx.get(f"{server.url}/metrics").text
    assert re.search(rf"^lapp_workers {workers}$", text, re.M), text
    assert re.search(
        r'^lapp_requests_total\{method="POST",path="/predict",status="200"\} 12$', text, re.M
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
    server.proc.kill()  # SIGKILL: the supervisor cannot stop its workers itself
    server.proc.wait(10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
    from lightning_app.serving.launch import SHARE_PREFIX, clear_stale_share_dirs

    left = list(Path(tempfile.gettempdir()).glob(f"{SHARE_PREFIX}{server.proc.pid}-*"))
    assert len(left) == 1  # the killed supervisor could not remove its metrics folder
    assert str(left[0]) in clear_stale_share_dirs()  # the next `lapp serve` does
    assert not left[0].exists()


def test_metrics_folders_of_killed_supervisors_are_removed(tmp_path):
    from lightning_app.serving.launch import SHARE_PREFIX, clear_stale_share_dirs

    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    dead = tmp_path / f"{SHARE_PREFIX}{gone.pid}-x1"
    live = tmp_path / f"{SHARE_PREFIX}{os.getpid()}-x2"
    other = tmp_path / "lapp-serve-metrics-notapid"
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "123.json").write_text("{}")
    assert clear_stale_share_dirs(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and live.exists() and other.exists()


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
