"""Training overhead: `lapp` fit against a plain PyTorch loop doing the same work, in one process.

Three cases, each with 10 epochs and a validation pass after every epoch on both sides: the
digits MLP at batch 32 (the default job), the digits CNN at batch 32, and the MLP at batch 256.
Within a case every run has the same data split and standardization, the same network (built by
the same code from the same seed) and batch size.

The baseline of each ratio is a plain loop **on equal terms**: the optimizer the `lapp` run
uses, built from the same config (Adam, lr 1e-3, ``fused=True``), with batches read the usual
way, ``DataLoader(TensorDataset, shuffle=True)``. Beside it, the same loop with
``torch.optim.Adam(lr=1e-3)`` in torch's default implementation (the loop as it is often
written), and the leanest loop: the same fused optimizer with batches sliced from the in-memory
tensors by a shuffled index (``torch.randperm(n).split(batch)``), which is how `lapp` reads them.

`lapp` runs its default config (best and last checkpoints, early stopping, LR monitor, CSV
logger, progress bar, model summary, ``steps_per_execution=auto``), with ``scheduler=none``,
no test and no export, and once more with ``steps_per_execution=1`` to show what grouping saves.
Its figure is ``fit/seconds`` from `metrics.json`: the whole ``trainer.fit`` call, its set-up
and checkpoint writes included. Each figure is the best of REPEATS alternating runs (the least
disturbed by other load). Prints figures; asserts nothing.

``BENCH_TRAIN_CASES=mlp,cnn,mlp256`` picks cases; ``BENCH_TRAIN_REPEATS`` the repeats.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 10
REPEATS = int(os.environ.get("BENCH_TRAIN_REPEATS", "5"))
# name -> (overrides of the default job, batch size); targets from the README.
CASES = {
    "mlp": ([], 32, 1.0),
    "cnn": (["model=cnn", "data.source.as_image=true"], 32, 1.02),
    "mlp256": ([], 256, 1.02),
}
COMMON = [f"trainer.max_epochs={EPOCHS}", "scheduler=none", "run_test=false", "deployment=none"]


def build_case(overrides: list[str]):
    """Tensors of the train and val splits, the DataSpec and the resolved config of a case."""
    from lightning_app.build import build_datamodule, plain_config
    from tests.conftest import compose

    cfg = plain_config(compose("train", COMMON + overrides))  # as `lapp train` converts it
    dm = build_datamodule(cfg.data, cfg.preprocessing)
    spec = dm.prepare()
    return cfg, spec, dm.split_tensors("train"), dm.split_tensors("val")


def make_net(cfg, spec, seed: int):
    """The network of the case, as `lapp` builds it, from ``seed``."""
    import torch

    from lightning_app.build import build_network

    torch.manual_seed(seed)
    return build_network(cfg.model, spec)


def plain_loop(case, seed: int, fused: bool, sliced: bool) -> float:
    """Seconds of EPOCHS epochs of training plus a validation pass after each.

    ``fused``: the optimizer of the `lapp` config (else ``torch.optim.Adam`` at the same lr with
    torch's default implementation); ``sliced``: batches by a shuffled index into the tensors
    (else ``DataLoader(TensorDataset, shuffle=True)``).
    """
    import hydra
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    cfg, spec, (x_tr, y_tr), (x_va, y_va) = case
    batch = cfg.data.loader.batch_size
    dims = [0, *range(2, x_tr.dim())]
    mean, std = x_tr.mean(dim=dims, keepdim=True), x_tr.std(dim=dims, keepdim=True)
    net = make_net(cfg, spec, seed)
    if fused:
        opt = hydra.utils.instantiate(cfg.optimizer)(net.parameters())
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=batch, shuffle=True)

    def batches():
        if not sliced:
            return loader
        return ((x_tr[idx], y_tr[idx]) for idx in torch.randperm(len(y_tr)).split(batch))

    started = time.perf_counter()
    for _ in range(EPOCHS):
        net.train()
        for xb, yb in batches():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net((xb - mean) / std), yb)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            (net((x_va - mean) / std).argmax(-1) == y_va).float().mean().item()
    return time.perf_counter() - started


def lapp_fit(tmp: Path, seed: int, overrides: list[str]) -> float:
    from hydra import compose, initialize_config_module

    from lightning_app.config.schemas import register_configs
    from lightning_app.recipes.train import train
    from lightning_app.runs import read_json

    register_configs()
    run_dir = tmp / f"run{time.monotonic_ns()}"
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        cfg = compose("train", [*COMMON, f"seed={seed}", f"paths.run_dir={run_dir}", *overrides])
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        logging.disable(logging.INFO)
        try:
            train(cfg)
        finally:
            logging.disable(logging.NOTSET)
    return read_json(run_dir / "metrics.json")["fit/seconds"]


def cfg_job_seconds() -> float:
    lapp = Path(sys.executable).with_name("lapp")
    started = time.perf_counter()
    subprocess.run([str(lapp), "train", "--cfg", "job"], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def run_case(name: str, tmp: Path) -> None:
    import torch

    overrides, batch, target = CASES[name]
    overrides = [*overrides, f"data.loader.batch_size={batch}"]
    case = build_case(overrides)
    runs = {
        "plain loop, equal terms (baseline)": lambda seed: plain_loop(case, seed, True, False),
        "plain loop, default Adam": lambda seed: plain_loop(case, seed, False, False),
        "plain loop, fused Adam, sliced batches": lambda seed: plain_loop(case, seed, True, True),
        "lapp fit (default config)": lambda seed: lapp_fit(tmp, seed, overrides),
        "lapp fit, steps_per_execution=1": lambda seed: lapp_fit(
            tmp, seed, [*overrides, "steps_per_execution=1"]
        ),
    }
    rows: dict[str, list[float]] = {label: [] for label in runs}
    for seed in range(REPEATS):  # alternating: each repeat runs every row once
        for label, run in runs.items():
            rows[label].append(run(seed))
    best = {k: min(v) for k, v in rows.items()}
    base = best[next(iter(best))]
    steps = EPOCHS * -(-len(case[2][1]) // batch)
    model = "CNN" if "model=cnn" in overrides else "MLP"
    print(
        f"\ndigits {model}, batch {batch}, {EPOCHS} epochs, {steps} steps, "
        f"threads={torch.get_num_threads()}, best of {REPEATS}; lapp default target <= {target}x"
    )
    print(f"{'what':<42}{'seconds':>9}{'ms/step':>9}{'ratio':>8}")
    for label, sec in best.items():
        print(f"{label:<42}{sec:>9.3f}{1000 * sec / steps:>9.3f}{sec / base:>8.2f}")


def main() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    cases = os.environ.get("BENCH_TRAIN_CASES", ",".join(CASES)).split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown BENCH_TRAIN_CASES {unknown}; known: {sorted(CASES)}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in cases:
            run_case(name, Path(tmp))
    cfg_job = [cfg_job_seconds() for _ in range(REPEATS)]
    print(
        f"\nlapp train --cfg job (fresh process, median of {REPEATS}): {statistics.median(cfg_job):.3f} s"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
