"""Starting, stopping and several workers: in-flight requests finish, no process is left behind."""

from __future__ import annotations

import json
import re
import signal
import socket
import time

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
    # Every worker publishes its counts about once a second: poll until they add up.
    wanted = [
        rf"^lapp_workers {workers}$",
        r'^lapp_requests_total\{method="POST",path="/predict",status="200"\} 12$',
    ]
    text = _poll(
        lambda: httpx.get(f"{server.url}/metrics").text,
        lambda t: all(re.search(w, t, re.M) for w in wanted),
    )
    assert all(re.search(w, text, re.M) for w in wanted), text


def _poll(read, done, timeout: float = 20.0, every: float = 0.05):
    """Call ``read`` until ``done(value)`` or ``timeout`` seconds; returns the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(every)
        value = read()
    return value


def _accepted(server, sock: socket.socket) -> bool:
    """Whether a server process holds the connection of ``sock`` (it has accepted it)."""
    port = sock.getsockname()[1]
    procs = [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(True)]
    for proc in procs:
        try:
            # net_connections since psutil 6, connections before
            conns = getattr(proc, "net_connections", None) or proc.connections
            if any(c.raddr and c.raddr.port == port for c in conns("tcp")):
                return True
        except psutil.Error:
            continue
    return False


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
    assert _poll(lambda: _accepted(server, in_flight), bool), "the server never accepted"
    server.proc.send_signal(sig)
    # Shutdown has begun in every worker (uvicorn logs it; the listening socket may stay open
    # in the supervisor until its workers are done): no new connections ...
    assert _poll(lambda: server.output.count("Shutting down") >= workers, bool), server.output[
        -2000:
    ]
    status, answer = _finish(in_flight, body)  # ... but the in-flight request completes
    assert status == 200 and len(answer["predictions"]) == 1
    assert server.stop(sig) == 0, server.output[-2000:]

    def alive():
        return [
            pid
            for pid in family
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]

    assert _poll(alive, lambda pids: pids == [], timeout=10) == [], server.output[-2000:]
    assert "server stopped" in server.output


@pytest.mark.slow
def test_a_worker_whose_supervisor_dies_shuts_itself_down(start_server, trained_run):
    server = start_server([f"run_dir={trained_run}", "serve.workers=2"])
    workers = psutil.Process(server.proc.pid).children(recursive=True)
    server.proc.kill()  # SIGKILL: the supervisor cannot stop its workers itself
    server.proc.wait(10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


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
