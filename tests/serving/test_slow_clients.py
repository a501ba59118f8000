"""Slow and too many clients, and answers too late, over real sockets: header deadline, connections
per worker, request time limit."""

from __future__ import annotations

import re
import socket
import time

import httpx

from tests.serving.test_lifecycle import _accepted, _poll

ROW = b'{"instances": [[1, 2, 3, 4, 5, 6, 7, 8]]}'


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _response(sock: socket.socket) -> bytes:
    """One whole HTTP response (headers and a content-length body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _trickle_until_closed(sock: socket.socket, give_up_s: float) -> tuple[float, bytes]:
    """Send one header line at a time, forever; returns (seconds until closed, what came back)."""
    started = time.monotonic()
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
    sock.settimeout(0.25)
    got = b""
    n = 0
    while time.monotonic() - started < give_up_s:
        try:
            sock.sendall(f"x-slow-{n}: y\r\n".encode())
        except OSError:  # the server closed the connection
            break
        n += 1
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return time.monotonic() - started, got


def test_headers_that_trickle_are_cut_off_at_the_deadline(start_server, trained_run):
    server = start_server([f"run_dir={trained_run}", "serve.limits.header_timeout_s=1"])
    slow = [_connect(server.url) for _ in range(20)]
    took, got = _trickle_until_closed(slow[0], give_up_s=30)
    assert took < 15, "a connection trickling headers was never closed"
    assert got.startswith(b"HTTP/1.1 408") and b"did not arrive in time" in got
    for sock in slow[1:]:  # the idle ones are gone too: nothing reads from them any more
        sock.settimeout(15)
        assert sock.recv(4096).startswith(b"HTTP/1.1 408")
        sock.close()
    # Headers that arrive in time, in pieces, and a kept-alive second request, are served.
    with _connect(server.url) as sock:
        head = (
            b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(ROW)}\r\n\r\n".encode()
        )
        for piece in (head[:10], head[10:30], head[30:]):
            sock.sendall(piece)
            time.sleep(0.1)
        sock.sendall(ROW)
        assert _response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(head + ROW)
        assert b'"predictions"' in _response(sock)
    assert httpx.get(f"{server.url}/ready").status_code == 200
    assert "Traceback" not in server.output


def test_connections_beyond_the_limit_get_503(start_server, trained_run):
    server = start_server([f"run_dir={trained_run}", "serve.limits.max_connections=4"])
    held = [_connect(server.url) for _ in range(4)]
    # Each held connection counts once the server process has accepted it (not in the backlog).
    accepted = _poll(lambda: [_accepted(server, s) for s in held], all)
    assert all(accepted), accepted
    resp = httpx.post(f"{server.url}/predict", content=ROW, timeout=10)
    assert resp.status_code == 503
    for sock in held:
        sock.close()
    # Once the server has seen them close, requests are served again.
    resp = _poll(
        lambda: httpx.post(f"{server.url}/predict", content=ROW, timeout=10),
        lambda r: r.status_code == 200,
    )
    assert resp.status_code == 200, resp.text


def test_an_answer_later_than_the_request_time_limit_is_503(start_server, trained_run):
    # The batcher holds a lone request for max_wait_ms (1 s, the most allowed) waiting for
    # company; the body arrived at once, so the 0.5 s limit is an answer too late: 503, not 408.
    server = start_server(
        [
            f"run_dir={trained_run}",
            "serve.batching.enabled=true",
            "serve.batching.max_batch_size=64",
            "serve.batching.max_wait_ms=1000",
            "serve.limits.request_timeout_s=0.5",
        ]
    )
    resp = httpx.post(f"{server.url}/predict", content=ROW, timeout=20)
    assert resp.status_code == 503, resp.text
    assert "request_timeout_s=0.5" in resp.text, resp.text
    assert "Traceback" not in server.output
