"""Training overhead: `lapp` fit vs a plain PyTorch loop doing the same work, in one process.

Same data split and standardization, same MLP, optimizer, seed, batch size 32 and 10 epochs,
with a validation pass after every epoch in both. The plain loop reads batches the usual way,
`DataLoader(TensorDataset, shuffle=True)`; lapp uses its default config (best and last
checkpoints, early stopping, LR monitor, CSV logger, progress bar, `steps_per_execution=auto`),
and once more with `steps_per_execution=1` (one optimizer step per Lightning step) to show what
grouping saves. Also times `lapp train --cfg job` (composition only) in a fresh process. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, BATCH, REPEATS = 10, 32, 5


def plain_loop(x_tr, y_tr, x_va, y_va, spec, seed: int) -> float:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_app.models.mlp import MLP

    torch.manual_seed(seed)
    mean, std = x_tr.mean(dim=(0, 2, 3), keepdim=True), x_tr.std(dim=(0, 2, 3), keepdim=True)
    net = MLP(spec, hidden_sizes=[128, 64])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=BATCH, shuffle=True)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        net.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net((xb - mean) / std), yb)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            (net((x_va - mean) / std).argmax(-1) == y_va).float().mean().item()
    return time.perf_counter() - started


def lapp_fit(tmp: Path, seed: int, *extra: str) -> float:
    from hydra import compose, initialize_config_module

    from lightning_app.config.schemas import register_configs
    from lightning_app.recipes.train import train
    from lightning_app.runs import read_json

    register_configs()
    run_dir = tmp / f"run{seed}_{len(extra)}"
    overrides = [
        f"trainer.max_epochs={EPOCHS}",
        "scheduler=none",
        "run_test=false",
        "deployment=none",
        f"seed={seed}",
        f"paths.run_dir={run_dir}",
        *extra,
    ]
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    train(cfg)
    return read_json(run_dir / "metrics.json")["fit/seconds"]


def cfg_job_seconds() -> float:
    lapp = Path(sys.executable).with_name("lapp")
    started = time.perf_counter()
    subprocess.run([str(lapp), "train", "--cfg", "job"], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    import contextlib
    import io
    import logging

    import torch

    from lightning_app.build import build_datamodule, plain_config
    from tests.conftest import compose

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    cfg = plain_config(compose("train", []))  # as `lapp train` converts it
    dm = build_datamodule(cfg.data, cfg.preprocessing)
    spec = dm.prepare()
    x_tr, y_tr = dm.split_tensors("train")
    x_va, y_va = dm.split_tensors("val")
    plain, lapp, single = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(REPEATS):
            plain.append(plain_loop(x_tr, y_tr, x_va, y_va, spec, seed))
            with (
                contextlib.redirect_stderr(io.StringIO()),
                contextlib.redirect_stdout(io.StringIO()),
            ):
                logging.disable(logging.INFO)
                lapp.append(lapp_fit(Path(tmp), seed))
                single.append(lapp_fit(Path(tmp), seed, "steps_per_execution=1"))
                logging.disable(logging.NOTSET)
    cfg_job = [cfg_job_seconds() for _ in range(REPEATS)]
    p, lp, sp = min(plain), min(lapp), min(single)  # min: least disturbed by other load
    steps = EPOCHS * -(-len(y_tr) // BATCH)
    print(
        f"digits MLP, {EPOCHS} epochs, batch {BATCH}, {steps} steps, threads={torch.get_num_threads()}, best of {REPEATS}"
    )
    print(f"{'what':<44}{'seconds':>10}{'ms/step':>10}{'ratio':>8}")
    print(
        f"{'plain loop, DataLoader(TensorDataset)':<44}{p:>10.3f}{1000 * p / steps:>10.3f}{1.0:>8.2f}"
    )
    print(f"{'lapp fit (default config)':<44}{lp:>10.3f}{1000 * lp / steps:>10.3f}{lp / p:>8.2f}")
    print(
        f"{'lapp fit, steps_per_execution=1':<44}{sp:>10.3f}{1000 * sp / steps:>10.3f}{sp / p:>8.2f}"
    )
    print(f"{'lapp train --cfg job (fresh process)':<44}{statistics.median(cfg_job):>10.3f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
