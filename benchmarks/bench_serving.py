"""Serving throughput and latency: `lapp serve` against a naive FastAPI+torch endpoint and LitServe.

For the digits MLP and CNN artifacts (trained once into ``outputs/bench/serving/``), each
server is started on loopback, warmed up, checked for a correct answer, then loaded from a
separate process (wrk where installed, else an aiohttp/httpx client process) with 32
connections for 10 s of single-instance ``POST /predict`` requests. Prints requests/s, p50/p99
latency, errors and processes left after SIGTERM; asserts nothing.

    python benchmarks/bench_serving.py [--duration 10] [--connections 32] [--models mlp,cnn]

Baselines (same file, started as subprocesses): ``--serve naive`` runs the checkpoint's torch
model eagerly per request in a plain FastAPI endpoint; ``--serve litserve`` serves the same
ONNX file with LitServe (optional: ``pip install 'lapp-ml[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "outputs" / "bench" / "serving"
PY = sys.executable


# -- baseline servers (run in a subprocess: `--serve naive|litserve`) ---------------------------
# Classes live at module level: LitServe starts its inference worker with `spawn`, which
# pickles the API object by reference.
from pydantic import BaseModel  # noqa: E402

try:
    import litserve as ls
except ImportError:  # optional benchmark dependency
    ls = None


class NaiveBody(BaseModel):
    instances: list


def serve_naive(run_dir: Path, port: int) -> None:
    """A plain FastAPI endpoint: pydantic body, torch eager forward per request."""
    import torch
    import uvicorn
    from fastapi import FastAPI

    from lightning_app.runs import find_checkpoint
    from lightning_app.training.loading import load_model

    torch.set_num_threads(1)
    loaded = load_model(find_checkpoint(run_dir))
    model, shape, names = loaded.model, loaded.spec.input_shape, loaded.spec.class_names
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: NaiveBody) -> dict:
        x = torch.tensor(body.instances, dtype=torch.float32).reshape(-1, *shape)
        with torch.no_grad():
            probs = model(x).softmax(-1)
        return {
            "predictions": [
                {"label": names[i], "score": float(p[i]), "probabilities": p.tolist()}
                for p, i in zip(probs, probs.argmax(-1).tolist(), strict=True)
            ]
        }

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if ls is not None:

    class OnnxAPI(ls.LitAPI):
        """LitServe over the same ONNX file, one ONNX Runtime thread."""

        def __init__(self, path: str, shape: tuple, names: list, max_batch_size: int):
            super().__init__(
                max_batch_size=max_batch_size, batch_timeout=0.002 if max_batch_size > 1 else 0.0
            )
            self.path, self.shape, self.names = path, shape, names

        def setup(self, device):
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self.session = ort.InferenceSession(self.path, opts)

        def decode_request(self, request):
            import numpy as np

            return np.asarray(request["instances"], dtype=np.float32).reshape(-1, *self.shape)

        def batch(self, inputs):
            import numpy as np

            return np.concatenate(inputs)

        def predict(self, x):
            return self.session.run(["probs"], {"input": x})[0]

        def unbatch(self, output):
            return [row[None] for row in output]

        def encode_response(self, probs):
            return {
                "predictions": [
                    {
                        "label": self.names[int(p.argmax())],
                        "score": float(p.max()),
                        "probabilities": p.tolist(),
                    }
                    for p in probs
                ]
            }


def serve_litserve(run_dir: Path, port: int, batch: int) -> None:
    from lightning_app.deployment.served_model import OnnxModel

    info = OnnxModel(run_dir / "model.onnx").info
    api = OnnxAPI(
        str(run_dir / "model.onnx"), tuple(info.spec["input_shape"]), info.class_names, batch
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=30)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


# -- load generation -------------------------------------------------------------------------
async def _client_load(url: str, body: bytes, connections: int, duration: float) -> dict:
    """Closed-loop load: ``connections`` workers, each sending one request after another."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    headers = {"content-type": "application/json"}
    try:
        import aiohttp

        conn = aiohttp.TCPConnector(limit=connections)
        session = aiohttp.ClientSession(connector=conn)

        async def post() -> int:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status
    except ImportError:
        import httpx

        session = httpx.AsyncClient(limits=httpx.Limits(max_connections=connections), timeout=30)

        async def post() -> int:
            return (await session.post(url, content=body, headers=headers)).status_code

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                ok = await post() == 200
            except Exception:  # a failed request is counted, not raised
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    await (session.close() if hasattr(session, "closed") else session.aclose())
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "rps": len(latencies) / elapsed,
        "p50": pick(0.50),
        "p99": pick(0.99),
        "errors": errors,
        "tool": "client",
    }


def _wrk_load(url: str, body: bytes, connections: int, duration: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n')
        fh.write('wrk.headers["Content-Type"] = "application/json"\n')
        script = fh.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{int(duration)}s",
                "--latency",
                "-s",
                script,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 30,
        ).stdout
    finally:
        os.unlink(script)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": errors,
        "tool": "wrk",
    }


def load(url: str, body: bytes, connections: int, duration: float) -> dict:
    """Load ``url`` from a separate process (wrk, or this script's client mode)."""
    if shutil.which("wrk"):
        return _wrk_load(url, body, connections, duration)
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as fh:
        fh.write(body)
    try:
        cmd = [
            PY,
            __file__,
            "--client",
            url,
            "--body",
            fh.name,
            "--connections",
            str(connections),
            "--duration",
            str(duration),
        ]
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 60, check=True
        ).stdout
    finally:
        os.unlink(fh.name)
    return json.loads(out.strip().splitlines()[-1])


# -- orchestration -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_run(name: str) -> Path:
    """The digits ``name`` run directory with its model.onnx, trained once if absent."""
    run_dir = RUNS / f"digits_{name}"
    if not (run_dir / "model.onnx").is_file():
        print(f"training digits_{name} once into {run_dir} ...", flush=True)
        subprocess.run(
            [
                PY,
                "-m",
                "lightning_app.cli",
                "train",
                f"experiment=digits_{name}",
                "deployment=onnx",
                "logger=none",
                "trainer.enable_progress_bar=false",
                f"hydra.run.dir={run_dir}",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    return run_dir


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def run_one(label: str, cmd: list[str], port: int, body: bytes, expect: str, args) -> dict:
    import httpx
    import psutil

    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            err = proc.stderr.read()[-1500:] if proc.poll() is not None else "timed out"
            raise RuntimeError(f"{label} did not start: {err}")
        with httpx.Client(timeout=30) as client:
            for _ in range(50):
                answer = client.post(
                    f"{url}/predict", content=body, headers={"content-type": "application/json"}
                )
        got = answer.json()["predictions"][0]["label"]
        if got != expect:
            raise RuntimeError(f"{label} answered {got!r}, expected {expect!r}")
        result = load(f"{url}/predict", body, args.connections, args.duration)
    finally:
        family = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(1.0)
        left = [
            p
            for p in family
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        for pid in left:  # clean up what the server left behind (reported below)
            os.kill(pid, signal.SIGKILL)
    return {**result, "label": label, "left": len(left)}


def contenders(run_dir: Path, port: int, litserve: bool) -> list[tuple[str, list[str]]]:
    lapp = [
        PY,
        "-m",
        "lightning_app.cli",
        "serve",
        f"run_dir={run_dir}",
        f"serve.port={port}",
        "serve.log_level=warning",
    ]
    out = [
        (
            "naive FastAPI + torch",
            [PY, __file__, "--serve", "naive", "--run-dir", str(run_dir), "--port", str(port)],
        ),
        ("lapp serve (batching, 1 worker)", lapp),
        ("lapp serve (no batching)", [*lapp, "serve.batching.enabled=false"]),
        ("lapp serve (batching, 2 workers)", [*lapp, "serve.workers=2"]),
    ]
    if litserve:
        for batch in (1, 64):
            cmd = [
                PY,
                __file__,
                "--serve",
                "litserve",
                "--run-dir",
                str(run_dir),
                "--port",
                str(port),
                "--batch",
                str(batch),
            ]
            out.append((f"LitServe (max_batch_size={batch})", cmd))
    return out


def main(args) -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    body = json.dumps({"instances": [digits.data[7].astype(float).tolist()]}).encode()
    expect = str(digits.target[7])
    litserve_ok = ls is not None
    if not litserve_ok:
        print("LitServe not installed (pip install 'lapp-ml[bench]'): its rows are skipped")
    tool = "wrk -t1" if shutil.which("wrk") else "async client process"
    print(
        f"load: {tool}, {args.connections} connections, {args.duration:g} s, 1 instance/request, "
        f"loopback, {os.cpu_count()} cores shared by server and load generator"
    )
    for name in args.models.split(","):
        run_dir = ensure_run(name)
        rows = []
        port = free_port()  # servers run one after another on the same port
        for label, cmd in contenders(run_dir, port, litserve_ok):
            try:
                rows.append(run_one(label, cmd, port, body, expect, args))
            except Exception as err:  # one failed contender does not end the table
                nan = float("nan")
                rows.append(
                    {
                        "label": label,
                        "rps": nan,
                        "p50": nan,
                        "p99": nan,
                        "errors": -1,
                        "left": 0,
                        "note": str(err)[:200],
                    }
                )
        base = rows[0]["rps"]
        print(f"\ndigits {name.upper()} ({run_dir / 'model.onnx'})")
        print(
            f"{'server':<34} {'req/s':>9} {'x naive':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'left':>5}"
        )
        for r in rows:
            ratio = r["rps"] / base if base and np.isfinite(r["rps"]) else float("nan")
            print(
                f"{r['label']:<34} {r['rps']:>9.0f} {ratio:>8.2f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>7} {r['left']:>5}"
                + (f"  ({r['note']})" if r.get("note") else "")
            )
        on = next(
            (r["rps"] for r in rows if r["label"].startswith("lapp serve (batching, 1")),
            float("nan"),
        )
        off = next(
            (r["rps"] for r in rows if r["label"].startswith("lapp serve (no batching")),
            float("nan"),
        )
        print(f"micro-batching on/off: {on / off:.2f}x" if off else "")


def parse(argv: list[str]):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--serve", choices=("naive", "litserve"))
    p.add_argument("--run-dir", type=Path)
    p.add_argument("--port", type=int)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--client")
    p.add_argument("--body")
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse(sys.argv[1:])
    if a.serve == "naive":
        serve_naive(a.run_dir, a.port)
    elif a.serve == "litserve":
        serve_litserve(a.run_dir, a.port, a.batch)
    elif a.client:
        print(
            json.dumps(
                asyncio.run(
                    _client_load(a.client, Path(a.body).read_bytes(), a.connections, a.duration)
                )
            )
        )
    else:
        main(a)
