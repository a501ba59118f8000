"""Start the model server: bind the socket, run one or several uvicorn workers, stop cleanly.

One worker runs in this process. Several workers are uvicorn's supervised processes sharing
one socket; each rebuilds the app from :class:`ServeSettings` in its environment, keeps its
metrics in ``prometheus_client``'s multiprocess directory (a temporary one, removed when the
supervisor exits), and shuts down if the supervisor dies.
SIGINT and SIGTERM stop accepting connections, let in-flight requests finish (up to
``serve.graceful_shutdown_s``), drain the batch queue, and return.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any

from lightning_app.errors import LappError
from lightning_app.serving.served_model import OnnxModel
from lightning_app.serving.settings import ENV_SETTINGS, MULTIPROC_ENV, ServeSettings

log = logging.getLogger("lightning_app.serve")
APP_FACTORY = "lightning_app.serving.server:app_from_env"


class ServeError(LappError):
    """The server cannot start (address in use, permission to bind)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ServeError(
            f"cannot bind {host}:{port}: {err.strerror}; choose another serve.port (0 picks a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: Any, settings: ServeSettings, factory: bool) -> Any:
    import uvicorn

    conf = settings.serve
    return uvicorn.Config(
        app,
        factory=factory,
        workers=conf.workers,
        log_level=conf.log_level.value,
        access_log=conf.access_log,
        timeout_graceful_shutdown=conf.graceful_shutdown_s,
        timeout_keep_alive=5,
        server_header=False,
        proxy_headers=False,  # nothing reads the client address; skip the per-request rewrite
        lifespan="on",
    )


def run_server(settings: ServeSettings, model: OnnxModel) -> None:
    """Serve until SIGINT/SIGTERM; prints the URL once the socket is bound.

    Args:
        settings: validated settings (artifact, serve config, API key).
        model: the artifact, already loaded and checked (reused by a single worker).
    """
    conf = settings.serve
    # prometheus_client picks its mode from this variable when it is first imported: one worker
    # keeps its metrics in memory, several get a directory of ours. A value from the caller's
    # environment would spread files there (or fail on a directory that does not exist).
    os.environ.pop(MULTIPROC_ENV, None)
    sock = bind(conf.host, conf.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {model.info.path} ({model.info.version}) at http://{shown}:{port}", flush=True)
    print(
        f"  docs: http://{shown}:{port}/docs   workers: {conf.workers}   stop: Ctrl+C / SIGTERM",
        flush=True,
    )
    stopped_by: list[int] = []
    # uvicorn re-raises the signal that stopped it once it is done; record it instead of dying.
    previous = {
        sig: signal.signal(sig, lambda s, _f: stopped_by.append(s))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        if conf.workers == 1:
            _run_single(settings, model, sock)
        else:
            _run_workers(settings, sock)
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reason = f" ({signal.Signals(stopped_by[0]).name})" if stopped_by else ""
    print(f"server stopped{reason}", flush=True)


def _run_single(settings: ServeSettings, model: OnnxModel, sock: socket.socket) -> None:
    import uvicorn

    from lightning_app.serving.server import create_app

    server = uvicorn.Server(_uvicorn_config(create_app(settings, model), settings, factory=False))
    server.run(sockets=[sock])
    if not server.started:
        raise ServeError("the server did not start; see the log above")


def _run_workers(settings: ServeSettings, sock: socket.socket) -> None:
    from uvicorn.supervisors import Multiprocess

    from lightning_app.serving.server_metrics import worker_exited

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, telling the metrics when a worker is gone (died, restarted)."""

        def keep_subprocess_alive(self) -> None:
            before = getattr(self, "_pids", set())
            super().keep_subprocess_alive()  # replaces the workers that died
            self._pids = {p.pid for p in self.processes}
            for pid in before - self._pids:
                worker_exited(share_dir, pid)

    share_dir = tempfile.mkdtemp(prefix="lapp-serve-metrics-")
    settings.share_dir, settings.parent_pid = share_dir, os.getpid()
    os.environ[ENV_SETTINGS] = settings.to_env()
    os.environ[MULTIPROC_ENV] = share_dir  # read by prometheus_client in each worker
    try:
        config = _uvicorn_config(APP_FACTORY, settings, factory=True)
        Supervisor(config, sockets=[sock]).run()
    finally:
        os.environ.pop(ENV_SETTINGS, None)
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(share_dir, ignore_errors=True)
        sys.stdout.flush()
