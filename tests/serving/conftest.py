"""Serving fixtures: one tiny trained run with its ONNX artifact, and real server processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TINY, compose, lapp_env

START_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """`lapp train` (tiny synthetic tabular data, 8 named features, 3 classes) with its model.onnx."""
    from lightning_app.recipes.train import train

    run_dir = tmp_path_factory.mktemp("served") / "run"
    train(compose("train", [*TINY, "deployment=onnx", f"paths.run_dir={run_dir}"]))
    assert (run_dir / "model.onnx").is_file(), "the deployment stage wrote no model.onnx"
    return run_dir


@pytest.fixture(scope="session")
def strict_artifact(trained_run, tmp_path_factory) -> Path:
    """The same model, with preprocessing metadata that forbids missing values."""
    import onnx

    from lightning_app.export.artifact import META_PREPROCESSING

    path = tmp_path_factory.mktemp("strict") / "model.onnx"
    model = onnx.load(str(trained_run / "model.onnx"))
    for prop in model.metadata_props:
        if prop.key == META_PREPROCESSING:
            prop.value = json.dumps({**json.loads(prop.value), "allow_missing": False})
    onnx.save(model, str(path))
    return path


class Server:
    """A `lapp serve` process; its output is collected by a thread so the pipe never fills."""

    def __init__(self, args: list[str], cwd: Path, env_extra: dict[str, str] | None = None):
        env = lapp_env(cwd)
        env.update(env_extra or {})
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lightning_app.cli", "serve", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # signals in tests reach the server only
        )
        threading.Thread(target=self._collect, daemon=True).start()
        self.url = self._wait_for_url()
        self._wait_ready()

    def _collect(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith("serving ") and " at http://" in line:
                    return line.rsplit(" at ", 1)[1].strip()
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server did not start:\n{self.output[-3000:]}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server never became ready:\n{self.output[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the server and wait for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"server ignored {signal.Signals(sig).name}:\n{self.output[-3000:]}"
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def start_server(tmp_path):
    """Start `lapp serve ARGS` on a free port; every server is stopped at teardown."""
    servers: list[Server] = []

    def _start(args: list[str], env_extra: dict[str, str] | None = None) -> Server:
        server = Server([*args, "serve.port=0"], tmp_path, env_extra)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.kill()


@pytest.fixture(scope="module")
def module_server(trained_run, tmp_path_factory):
    """One server shared by a module's tests: small limits, so 413s are cheap to provoke."""
    server = Server(
        [
            f"run_dir={trained_run}",
            "serve.port=0",
            "serve.limits.max_instances=64",
            "serve.limits.max_body_bytes=65536",
        ],
        tmp_path_factory.mktemp("server"),
    )
    yield server
    server.stop()
