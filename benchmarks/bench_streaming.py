"""Streamed against in-memory training on a table of Parquet shards (nothing asserted).

A generated classification table (default 6,000,000 rows x 32 float features, 4 classes, in 60
Parquet shards, in a temporary directory) trains one epoch with ``lapp train`` twice, side by
side: read into memory (``data.source.path=DIR``) and streamed
(``data.source.streaming=true``). Each run is its own process tree; a sampler polls the
resident memory of the whole tree (psutil, every 50 ms). Printed, as ratios streamed /
in-memory: peak memory (goal <= 0.5x), wall time (goal <= 1.5x), and the test accuracy
difference in points (goal within 1). Then the streamed run again on the same rows in one
Parquet file (row groups of 65,536 rows), and on one shard alone (60x fewer rows), against the
60 shards: peak memory (goal: flat, within 1.2x).

The storage layer is also measured on the same shards: one pass of pyarrow's Parquet batch
reader (what the streamed source uses) against Hugging Face ``datasets`` streaming the same
files (when it is installed), rows per second.

``python benchmarks/bench_streaming.py [--rows N] [--shards K] [--features F] [--small]
[--keep DIR]``: ``--small`` is 300,000 rows in 60 shards (minutes, for iterating).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


SMALL = "--small" in sys.argv
ROWS = _arg("--rows", 300_000 if SMALL else 6_000_000)
SHARDS = _arg("--shards", 60)
FEATURES = _arg("--features", 32)
CLASSES = 4
BATCH = 1024
ROW_GROUP = 65_536


def generate(directory: Path, rows: int, shards: int, one_file: Path | None = None) -> None:
    """``shards`` Parquet files of a learnable 4-class problem (a fixed linear map + noise);
    with ``one_file``, the same rows also go to one file, shard by shard as row groups."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(FEATURES, CLASSES))
    directory.mkdir(parents=True, exist_ok=True)
    writer = None
    per = -(-rows // shards)
    for i in range(shards):
        n = min(per, rows - i * per)
        x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        y = np.argmax(x @ weights + rng.normal(scale=1.0, size=(n, CLASSES)), axis=1)
        table = pa.table({**{f"f{j:02d}": x[:, j] for j in range(FEATURES)}, "label": y})
        pq.write_table(table, directory / f"part-{i:03d}.parquet", row_group_size=ROW_GROUP)
        if one_file is not None:
            writer = writer or pq.ParquetWriter(one_file, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP)
    if writer is not None:
        writer.close()


def _tree_rss(proc) -> int:
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a child that just ended
            total += p.memory_info().rss
    return total


def run(path: Path, streaming: bool, run_dir: Path) -> dict[str, float]:
    """One `lapp train` epoch; wall seconds, peak tree memory (MiB), test accuracy."""
    import psutil

    cmd = [
        sys.executable,
        "-m",
        "lightning_app.train",
        "data=csv",
        f"data.source.path={path}",
        "data.source.target=label",
        "data.source.task=classification",
        f"data.source.streaming={str(streaming).lower()}",
        f"data.loader.batch_size={BATCH}",
        "data.loader.eval_batch_size=8192",
        "trainer.max_epochs=1",
        "logger=none",
        "callbacks=none",
        "deployment=none",
        "deployment.report=false",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.run_dir={run_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - started
    sampler.join()
    if proc.returncode:
        print(out[-4000:])
        raise SystemExit(f"lapp train failed ({'streamed' if streaming else 'in-memory'})")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"wall_s": wall, "peak_mib": peak[0] / 2**20, "test_acc": 100 * metrics["test/acc"]}


def storage_layers(directory: Path) -> None:
    """Rows per second of one pass over the shards: pyarrow batches vs HF datasets."""
    import pyarrow.parquet as pq

    files = sorted(str(p) for p in directory.glob("*.parquet"))
    started, rows = time.perf_counter(), 0
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=ROW_GROUP):
            rows += len(batch.to_pandas())
    arrow = rows / (time.perf_counter() - started)
    print(f"storage: pyarrow Parquet batches -> pandas: {arrow:,.0f} rows/s")
    try:
        import datasets
    except ImportError:
        print("storage: Hugging Face datasets not installed; skipped")
        return
    ds = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
    started, rows = time.perf_counter(), 0
    for batch in ds.iter(batch_size=ROW_GROUP):
        rows += len(batch["label"])
    hf = rows / (time.perf_counter() - started)
    print(
        f"storage: datasets streaming iter: {hf:,.0f} rows/s ({arrow / hf:.1f}x slower than pyarrow)"
    )


def main() -> None:
    keep = Path(sys.argv[sys.argv.index("--keep") + 1]) if "--keep" in sys.argv else None
    with tempfile.TemporaryDirectory(prefix="lapp_stream_") as tmp:
        root = keep or Path(tmp)
        shards, one = root / "shards", root / "one.parquet"
        if not shards.is_dir():
            started = time.perf_counter()
            generate(shards, ROWS, SHARDS, one_file=one)
            print(
                f"generated {ROWS:,} rows x {FEATURES} in {SHARDS} shards "
                f"({time.perf_counter() - started:.0f} s)"
            )
        try:
            load = os.getloadavg()
            print(
                f"load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
                f"on {os.cpu_count()} cores"
            )
        except OSError:
            pass
        storage_layers(shards)
        results = {}
        for name, path, streaming in (
            ("in-memory", shards, False),
            ("streamed", shards, True),
            ("streamed, 1 file", one, True),
            ("streamed, 1 shard", shards / "part-000.parquet", True),
        ):
            results[name] = run(
                path, streaming, root / f"run-{name.replace(' ', '').replace(',', '-')}"
            )
            r = results[name]
            print(
                f"{name:17s} wall {r['wall_s']:7.1f} s  peak {r['peak_mib']:7.0f} MiB  "
                f"test acc {r['test_acc']:.2f} %",
                flush=True,
            )
        mem, st = results["in-memory"], results["streamed"]
        one_r, small = results["streamed, 1 file"], results["streamed, 1 shard"]
        print("\n| measurement | streamed / in-memory | goal |\n| --- | --- | --- |")
        print(
            f"| peak memory of the process tree | {st['peak_mib'] / mem['peak_mib']:.2f}x | <= 0.5x |"
        )
        print(f"| wall time, 1 epoch + test | {st['wall_s'] / mem['wall_s']:.2f}x | <= 1.5x |")
        print(f"| test accuracy | {st['test_acc'] - mem['test_acc']:+.2f} points | within 1 |")
        print(
            f"| streamed peak memory, {SHARDS} shards / the same rows in 1 file | "
            f"{st['peak_mib'] / one_r['peak_mib']:.2f}x | within 1.2x |"
        )
        print(
            f"| streamed peak memory, {SHARDS} shards / 1 shard ({SHARDS}x fewer rows) | "
            f"{st['peak_mib'] / small['peak_mib']:.2f}x | within 1.2x |"
        )


if __name__ == "__main__":
    main()
