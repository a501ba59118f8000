"""Serving throughput and latency: `lapp serve` against a naive FastAPI+torch endpoint and LitServe.

For the digits MLP and CNN artifacts (trained once into ``outputs/bench/serving/``), each server
is started on loopback, warmed up, checked for a correct answer, then loaded from a separate
process (wrk where installed, else an aiohttp/httpx client process) with 32 connections for
10 s of single-instance ``POST /predict`` requests. Prints requests/s, p50/p99 latency,
errors, the server's CPU time per request (its own processes, so it hardly depends on what
else the machine runs) and processes left after SIGTERM; asserts nothing.

    python benchmarks/bench_serving.py [--duration 10] [--connections 32] [--models mlp,cnn]

The baselines live in ``serving_baselines.py`` (LitServe rows need ``lapp-ml[bench]``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
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
BASELINES = str(Path(__file__).with_name("serving_baselines.py"))
PY = sys.executable


# -- load generation -------------------------------------------------------------------------
async def client_load(url: str, body: bytes, connections: int, duration: float) -> dict:
    """Closed-loop load: ``connections`` workers, each sending one request after another."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    headers = {"content-type": "application/json"}
    if importlib.util.find_spec("aiohttp"):
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))

        async def post() -> int:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        close = session.close
    else:
        import httpx

        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=connections), timeout=30)

        async def post() -> int:
            return (await client.post(url, content=body, headers=headers)).status_code

        close = client.aclose

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
    await close()
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "rps": len(latencies) / elapsed,
        "p50": pick(0.5),
        "p99": pick(0.99),
        "errors": errors,
        "n": len(latencies),
    }


def wrk_load(url: str, body: bytes, connections: int, duration: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n')
        fh.write('wrk.headers["Content-Type"] = "application/json"\n')
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", "-s", fh.name, url]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    finally:
        os.unlink(fh.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return (
            float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else float("nan")
        )

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": errors,
        "n": int(total.group(1)) if total else 0,
    }


def load(url: str, body: bytes, connections: int, duration: float) -> dict:
    """Load ``url`` from a separate process: wrk, or this script in ``--client`` mode."""
    if shutil.which("wrk"):
        return wrk_load(url, body, connections, duration)
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as fh:
        fh.write(body)
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
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 60, check=True
        ).stdout
    finally:
        os.unlink(fh.name)
    return json.loads(out.strip().splitlines()[-1])


# -- servers -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_run(name: str) -> Path:
    """The digits ``name`` run directory with its model.onnx, trained once if absent."""
    run_dir = RUNS / f"digits_{name}"
    if not (run_dir / "model.onnx").is_file():
        print(f"training digits_{name} once into {run_dir} ...", flush=True)
        cmd = [PY, "-m", "lightning_app.cli", "train", f"experiment=digits_{name}", "deployment=onnx",
               "logger=none", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
        subprocess.run(
            cmd,
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    return run_dir


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
        ("naive FastAPI + torch eager", [PY, BASELINES, "naive", str(run_dir), str(port)]),
        ("lapp serve (batching, 1 worker)", lapp),
        ("lapp serve (no batching, 1 worker)", [*lapp, "serve.batching.enabled=false"]),
        (
            "lapp serve (no batching, thread/call)",
            [*lapp, "serve.batching.enabled=false", "serve.batching.inline_call_ms=0"],
        ),
        ("lapp serve (batching, 2 workers)", [*lapp, "serve=throughput"]),
    ]
    if litserve:
        out += [
            (
                f"LitServe (max_batch_size={b})",
                [PY, BASELINES, "litserve", str(run_dir), str(port), str(b)],
            )
            for b in (1, 64)
        ]
    return out


def _cpu_seconds(procs: list) -> float:
    import psutil

    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _wait_healthy(proc: subprocess.Popen, url: str, label: str) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    detail = proc.stderr.read()[-1500:] if proc.poll() is not None else "timed out"
    raise RuntimeError(f"{label} did not start: {detail}")


def run_one(label: str, cmd: list[str], port: int, body: bytes, expect: str, args) -> dict:
    """Start one server, check its answer, load it, stop it; measure what it left behind."""
    import httpx
    import psutil

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    family: list = []
    try:
        _wait_healthy(proc, url, label)
        with httpx.Client(timeout=30) as client:
            for _ in range(50):  # warm-up
                answer = client.post(
                    f"{url}/predict", content=body, headers={"content-type": "application/json"}
                )
        got = answer.json()["predictions"][0]["label"]
        if got != expect:
            raise RuntimeError(f"{label} answered {got!r}, expected {expect!r}")
        root = psutil.Process(proc.pid)
        family = [root, *root.children(recursive=True)]
        cpu = _cpu_seconds(family)
        result = load(f"{url}/predict", body, args.connections, args.duration)
        result["cpu_ms"] = (_cpu_seconds(family) - cpu) * 1000 / max(1, result["n"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(1.0)
        left = [p for p in family[1:] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for p in left:  # clean up what the server left behind (reported in the table)
            p.kill()
    return {**result, "label": label, "left": len(left)}


def main(args) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    body = json.dumps({"instances": [digits.data[7].astype(float).tolist()]}).encode()
    expect = str(digits.target[7])
    litserve = importlib.util.find_spec("litserve") is not None
    if not litserve:
        print("LitServe not installed (pip install 'lapp-ml[bench]'): its rows are skipped")
    tool = "wrk -t1" if shutil.which("wrk") else "async client process"
    print(f"load: {tool}, {args.connections} connections, {args.duration:g} s, 1 instance/request, loopback; "
          f"{os.cpu_count()} cores shared by the server, the load generator and whatever else runs; "
          f"load average before: {os.getloadavg()[0]:.1f}")  # fmt: skip
    for name in args.models.split(","):
        run_dir = ensure_run(name)
        port, rows = free_port(), []  # servers run one after another on the same port
        for label, cmd in contenders(run_dir, port, litserve):
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
                        "cpu_ms": nan,
                        "errors": -1,
                        "left": 0,
                        "note": str(err)[:200],
                    }
                )
        print(f"\ndigits {name.upper()} ({run_dir / 'model.onnx'})")
        print(
            f"{'server':<36} {'req/s':>7} {'x naive':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'CPU ms/req':>10} {'left':>4}"
        )
        base = rows[0]["rps"]
        for r in rows:
            print(f"{r['label']:<36} {r['rps']:>7.0f} {r['rps'] / base:>7.2f} {r['p50']:>7.2f} {r['p99']:>7.2f} "
                  f"{r['errors']:>6} {r['cpu_ms']:>10.3f} {r['left']:>4}" + (f"  ({r['note']})" if r.get("note") else ""))  # fmt: skip
        on = rows[1]
        for off in rows[2:4]:
            print(f"micro-batching on vs {off['label'][len('lapp serve ('):-1]}: {on['rps'] / off['rps']:.2f}x requests/s, "
                  f"{off['cpu_ms'] / on['cpu_ms']:.2f}x less CPU per request")  # fmt: skip
        print(f"load average after: {os.getloadavg()[0]:.1f}")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per server")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    p.add_argument("--client", help=argparse.SUPPRESS)  # internal: the load generator process
    p.add_argument("--body", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse(sys.argv[1:])
    if a.client:
        print(
            json.dumps(
                asyncio.run(
                    client_load(a.client, Path(a.body).read_bytes(), a.connections, a.duration)
                )
            )
        )
    else:
        main(a)
