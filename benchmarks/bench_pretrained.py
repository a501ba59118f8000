"""Pretrained encoders: fine-tuning overhead, memory of LoRA and checkpointing, int8 ONNX.

A BERT-base-shaped encoder (``BertConfig()``: 12 layers, width 768, ~110M parameters) with
random weights, built here (nothing is downloaded), sequence length 128:

1. Fine-tuning step time of ``model=pretrained`` inside the LightningModule and Trainer,
   against a plain transformers + PyTorch loop on the same model, batch and optimizer
   (rounds alternate between the two; medians).
2. Training memory, each configuration in its own process: peak RSS over two training steps
   (Linux ``/proc`` peak reset) above the model once built and read in (its weights are mapped
   from the file and become resident on first use), and above the process before the model was
   loaded: LoRA against full fine-tuning, and gradient checkpointing against none under both;
   at ``--batch`` and at text_finetune's own batch of 16 (``--memory-batches``); each with
   glibc's default allocator and with ``release_freed_memory`` (freed blocks of 1 MiB and more
   go back to the system; the default keeps part of the freed activations resident), with the
   time of each process's second step under both (one step each: a rough figure). Gradients
   and Adam state (together 3x the weights under full fine-tuning) do not shrink with
   checkpointing, so its ratio falls as the batch, and with it the activations, grows.
3. The exported ONNX: int8 (dynamic quantization) against fp32 size, batch-1 latency against
   torch eager, and argmax agreement of int8 with fp32 on 256 rows, the model first fine-tuned on
   a synthetic two-class task until it has learnt it (95% held-out accuracy, or
   ``--finetune-steps``; the accuracy reached is printed).
4. ``--serve``: `lapp serve` over a `text_finetune` run of the model (one epoch on generated
   reviews) against a plain FastAPI endpoint running the transformers text-classification
   pipeline on the same weights: requests/s and p50/p99 latency at 32 connections, one raw
   text per request (the load generator of bench_serving.py).

    python benchmarks/bench_pretrained.py [--size base|small] [--batch 8] [--rounds 3] [--serve]
        [--only-memory | --only-onnx | --only-serve]

Prints ratios; asserts nothing. Timings depend on what else the machine runs (the load
average is printed with them). ``--size small`` runs a 4-layer, width-256 model in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIZES = {
    "base": {},  # BertConfig's defaults: bert-base
    "small": {
        "hidden_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
    },
}
SEQ = 128
LABEL_WORDS = 16  # places per row of part 3's synthetic task that carry the label
WARMUP_STEPS = 4  # part 3's fine-tune: linear learning-rate warmup
LORA = {"r": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": ["query", "value"]}


def build_model_dir(directory: Path, size: str) -> Path:
    """A random-weight BERT of the chosen size with a small WordPiece tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        ["good bad film plot actors story great awful"] * 4,
        trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials),
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]"
    ).save_pretrained(str(directory))
    torch.manual_seed(0)
    BertModel(BertConfig(**SIZES[size])).save_pretrained(str(directory))
    return directory


def _spec():
    from lightning_app.data.spec import DataSpec

    return DataSpec(
        task="classification",
        input_shape=(SEQ,),
        num_outputs=2,
        input_kind="tokens",
        vocab_size=300,
        extra={"pad_id": 0, "tokenizer": "pretrained"},
    )


def _batch(batch: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(5, 300, (batch, SEQ), generator=g)
    y = (x[:, 1] % 2).long()  # a learnable rule: the first word's parity
    return x, y


def _task_batch(batch: int, seed: int):
    """Rows of part 3's synthetic review task: random words, and at LABEL_WORDS random places a
    word that gives the label (id 5: class 1, id 6: class 0), as sentiment words do in a review."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(10, 300, (batch, SEQ), generator=g)
    y = torch.randint(0, 2, (batch,), generator=g)
    where = torch.randint(1, SEQ - 1, (batch, LABEL_WORDS), generator=g)
    x.scatter_(1, where, (6 - y).unsqueeze(1).expand(-1, LABEL_WORDS))
    return x, y


# -- 1. step time -------------------------------------------------------------------------------
def _framework_steps(model_dir: Path, batch: int, steps: int) -> list[float]:
    """Seconds per training step of model=pretrained in LitModel + Trainer."""
    import pytorch_lightning as pl
    import torch

    from lightning_app.models.module import LitModel
    from lightning_app.models.pretrained.network import Pretrained

    class Timer(pl.Callback):
        def __init__(self):
            self.times: list[float] = []

        def on_train_batch_start(self, *args):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, *args):
            self.times.append(time.perf_counter() - self.t0)

    net = Pretrained(_spec(), str(model_dir), head_dropout=0.0)
    lit = LitModel(
        net=net,
        transform=torch.nn.Identity(),
        task="classification",
        num_outputs=2,
        optimizer=lambda p: torch.optim.AdamW(p, lr=2e-5),
        scheduler={"name": "none"},
        monitor="val/loss",
    )
    x, y = _batch(batch)
    data = torch.utils.data.DataLoader(
        list(zip(x.repeat(steps + 1, 1), y.repeat(steps + 1), strict=True)), batch_size=batch
    )
    timer = Timer()
    trainer = pl.Trainer(
        max_steps=steps + 1,
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(lit, train_dataloaders=data)
    return timer.times[1:]  # the first step pays for lazy setup


def _plain_steps(model_dir: Path, batch: int, steps: int) -> list[float]:
    """Seconds per step of the same model in a hand-written transformers + PyTorch loop."""
    import torch
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(str(model_dir)).train()
    head = torch.nn.Linear(backbone.config.hidden_size, 2)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=2e-5)
    x, y = _batch(batch)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        mask = (x != 0).long()
        logits = head(backbone(input_ids=x, attention_mask=mask).last_hidden_state[:, 0])
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


# -- 2. memory (one process per configuration) ----------------------------------------------------
def _memory_child(
    model_dir: str, batch: int, finetune: str, checkpointing: bool, release: bool
) -> None:
    import gc

    import torch

    from lightning_app.models.pretrained.network import Pretrained
    from lightning_app.training.allocator import release_freed_memory

    torch.set_num_threads(1)
    if release:  # as `lapp train release_freed_memory=true` does before building anything
        release_freed_memory()
    x, y = _batch(batch)
    gc.collect()
    before = _rss_mb("VmRSS")
    net = Pretrained(
        _spec(),
        model_dir,
        finetune=finetune,
        lora=LORA,
        gradient_checkpointing=checkpointing,
    ).train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    # The weights are mapped from model.safetensors and become resident only when first read:
    # one forward without gradients reads them all, so that every configuration's baseline holds
    # the whole model (else the first training step counts the weights as training memory).
    with torch.no_grad():
        net(x)
    gc.collect()
    base = _rss_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # resets the peak (VmHWM) to the current RSS
        fh.write("5")
    for _ in range(2):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step_s = time.perf_counter() - started  # the second step's is reported
    peak = _rss_mb("VmHWM")
    print(json.dumps({"train_mb": peak - base, "total_mb": peak - before, "step_s": step_s}))


def _rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory(
    model_dir: Path, batch: int, finetune: str, checkpointing: bool, release: bool
) -> dict[str, float]:
    """Peak RSS in MiB over two training steps, in a process of its own: ``train_mb`` above the
    built and warmed model (what training adds), ``total_mb`` above the process before the model
    was loaded (weights included). ``release``: with ``release_freed_memory``."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from benchmarks.bench_pretrained import _memory_child;"
        "_memory_child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == '1', sys.argv[6] == '1')"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(ROOT),
            str(model_dir),
            str(batch),
            finetune,
            str(int(checkpointing)),
            str(int(release)),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print_memories(model_dir: Path, batches: list[int]) -> None:
    for batch in sorted(set(batches)):
        default, release = (_print_memory(model_dir, batch, r) for r in (False, True))
        steps = ", ".join(
            f"{ft}{' + checkpointing' if ck else ''} {release[ft, ck]['step_s'] / default[ft, ck]['step_s']:.2f}x"
            for ft, ck in default
        )
        print(f"   second step's time, release_freed_memory against default: {steps}")


def _print_memory(model_dir: Path, batch: int, release: bool) -> dict:
    runs = {
        (finetune, ckpt): _memory(model_dir, batch, finetune, ckpt, release)
        for finetune in ("full", "lora")
        for ckpt in (False, True)
    }
    allocator = "release_freed_memory=true" if release else "glibc's default allocator"
    print(f"2. training memory, batch {batch}, {allocator} (peak MiB over two steps):")
    for key in ("train_mb", "total_mb"):
        m = {k: v[key] for k, v in runs.items()}
        what = "above the loaded model" if key == "train_mb" else "weights included"
        print(
            f"   {what:<23} full {m['full', False]:6.0f}, lora {m['lora', False]:6.0f} -> "
            f"{m['lora', False] / m['full', False]:.2f}x; checkpointing: full "
            f"{m['full', True]:6.0f} -> {m['full', True] / m['full', False]:.2f}x, lora "
            f"{m['lora', True]:6.0f} -> {m['lora', True] / m['lora', False]:.2f}x"
        )
    return runs


# -- 3. ONNX fp32 / int8 ----------------------------------------------------------------------
def _onnx(model_dir: Path, work: Path, train_steps: int) -> dict[str, float]:
    import numpy as np
    import torch

    from lightning_app.compression.quantization import quantize
    from lightning_app.export.onnx_export import export_onnx
    from lightning_app.export.sessions import open_session

    torch.manual_seed(0)
    net, (steps, accuracy) = trained_model(model_dir, train_steps)
    spec = _spec()
    fp32, int8 = work / "model.onnx", work / "model.int8.onnx"
    export_onnx(net, spec, fp32, exporter="dynamo", example=_batch(2)[0])
    quantize(fp32, int8, "dynamic", per_channel=True)
    x = _task_batch(256, seed=1000)[0]
    sessions = {p.name: open_session(p, threads=1) for p in (fp32, int8)}
    outs = {n: s.run(None, {"input": x.numpy()})[0] for n, s in sessions.items()}
    agree = float(np.mean(outs["model.onnx"].argmax(-1) == outs["model.int8.onnx"].argmax(-1)))
    probs = {n: np.exp(o - o.max(-1, keepdims=True)) for n, o in outs.items()}
    probs = {n: p / p.sum(-1, keepdims=True) for n, p in probs.items()}
    prob_gap = float(np.abs(probs["model.onnx"] - probs["model.int8.onnx"]).max())
    one = x[:1]

    def lat(fn, n=20):
        fn()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    net.eval()
    with torch.inference_mode():
        eager = lat(lambda: net(one))
    return {
        "size_int8_vs_fp32": int8.stat().st_size / fp32.stat().st_size,
        "latency_int8_vs_eager": lat(
            lambda: sessions["model.int8.onnx"].run(None, {"input": one.numpy()})
        )
        / eager,
        "latency_fp32_vs_eager": lat(
            lambda: sessions["model.onnx"].run(None, {"input": one.numpy()})
        )
        / eager,
        "agreement_int8_fp32": agree,
        "max_prob_gap": prob_gap,
        "finetune_steps": steps,
        "finetune_accuracy": accuracy,
    }


def trained_model(model_dir: Path, max_steps: int, target: float = 0.95):
    """model=pretrained fine-tuned on the synthetic review task (``_task_batch``) until its
    accuracy on 128 held-out rows reaches ``target`` (checked every 5 steps) or ``max_steps``
    steps have run. Returns the model and (steps run, held-out accuracy).

    The recipe of ``experiment=text_finetune``: AdamW at lr 3e-5 with weight decay 0.01,
    gradients clipped to norm 1, batch 16; the new head at ``model.head_lr=1e-3`` (a head starts
    from nothing, the backbone from weights worth keeping), and a linear warmup over the first
    WARMUP_STEPS. With one rate of 1e-4 for all and no warmup, the 12-layer model had not learnt
    the task after 80 steps, although a linear probe on its mean-pooled features separates the
    classes.
    """
    import torch

    from lightning_app.models.pretrained.network import Pretrained

    # mean pooling, as text_finetune's users set model.pooling=mean for a review's words
    net = Pretrained(
        _spec(), str(model_dir), head_dropout=0.0, pooling="mean", backbone_lr=3e-5, head_lr=1e-3
    ).train()
    opt = torch.optim.AdamW(net.param_groups(), lr=3e-5, weight_decay=0.01)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / WARMUP_STEPS))
    held_x, held_y = _task_batch(128, seed=900)
    acc, step = 0.0, 0
    while step < max_steps and acc < target:
        x, y = _task_batch(16, seed=100 + step)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        warmup.step()
        step += 1
        if step % 5 == 0 or step == max_steps:
            net.eval()
            with torch.inference_mode():
                acc = float((net(held_x).argmax(-1) == held_y).float().mean())
            net.train()
    return net.eval(), (step, acc)


# -- 4. serving ---------------------------------------------------------------------------------
def _serve(model_dir: Path, work: Path, connections: int, duration: float) -> None:
    import csv
    import random

    from benchmarks import bench_serving as bs

    data = work / "reviews.csv"
    rng = random.Random(0)
    words = {1: ["good", "great", "film"], 0: ["bad", "awful", "plot"]}
    with open(data, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for i in range(400):
            out.writerow([" ".join(rng.choices(words[i % 2], k=12)), "pos" if i % 2 else "neg"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    run_dir = work / "run"
    subprocess.run(
        [sys.executable, "-m", "lightning_app.cli", "train", "experiment=text_finetune",
         f"model.pretrained={model_dir}", f"data.source.path={data}", "trainer.max_epochs=1",
         "logger=none", "trainer.enable_progress_bar=false", "compression=none",
         "deployment.report=false", f"hydra.run.dir={run_dir}"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    body = json.dumps({"instances": ["a good film with a great plot and good actors"]}).encode()
    port = bs.free_port()
    servers = [
        ("transformers pipeline (FastAPI)", [sys.executable, bs.BASELINES, "pipeline", str(run_dir / "backbone"), str(port)]),
        ("lapp serve (fp32 ONNX)", [sys.executable, "-m", "lightning_app.cli", "serve", f"run_dir={run_dir}", f"serve.port={port}", "serve.log_level=warning"]),
    ]  # fmt: skip
    rows = []
    for label, cmd in servers:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            bs._wait_healthy(proc, url, label)
            import httpx

            for _ in range(20):  # warm-up
                httpx.post(f"{url}/predict", content=body, headers={"content-type": "application/json"}, timeout=60)  # fmt: skip
            rows.append((label, bs.load(f"{url}/predict", body, connections, duration)))
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)
    base = rows[0][1]["rps"]
    for label, r in rows:
        print(f"4. serve {label:<34} {r['rps']:8.1f} req/s ({r['rps'] / base:.2f}x)  p50 "
              f"{r['p50']:.1f} ms  p99 {r['p99']:.1f} ms  errors {r['errors']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--memory-batches",
        type=lambda text: [int(b) for b in text.split(",") if b],
        default=[16],
        help="batch sizes of part 2 besides --batch (16: text_finetune's own)",
    )
    parser.add_argument(
        "--finetune-steps", type=int, default=40, help="most steps of part 3's fine-tune"
    )
    parser.add_argument("--serve", action="store_true", help="also part 4 (serving)")
    parser.add_argument("--only-serve", action="store_true", help="part 4 alone")
    parser.add_argument("--only-onnx", action="store_true", help="part 3 alone")
    parser.add_argument("--only-memory", action="store_true", help="part 2 alone")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per server")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(
        f"load average before: {os.getloadavg()}; size={args.size}, batch={args.batch}, seq={SEQ}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model_dir(Path(tmp) / "bert", args.size)
        if args.serve or args.only_serve:
            _serve(model_dir, Path(tmp), args.connections, args.duration)
        if args.only_serve:
            return
        if args.only_onnx:
            _print_onnx(_onnx(model_dir, Path(tmp), train_steps=args.finetune_steps))
            return
        if args.only_memory:
            _print_memories(model_dir, [args.batch, *args.memory_batches])
            return
        ours, plain = [], []
        for _ in range(args.rounds):  # alternate A/B so load changes hit both
            ours += _framework_steps(model_dir, args.batch, args.steps)
            plain += _plain_steps(model_dir, args.batch, args.steps)
        print(
            f"\n1. step time: model=pretrained {statistics.median(ours):.3f}s, plain loop "
            f"{statistics.median(plain):.3f}s -> ratio {statistics.median(ours) / statistics.median(plain):.3f}x"
        )
        _print_memories(model_dir, [args.batch, *args.memory_batches])
        _print_onnx(_onnx(model_dir, Path(tmp), train_steps=args.finetune_steps))
    print(f"load average after: {os.getloadavg()}")


def _print_onnx(onnx: dict[str, float]) -> None:
    print(
        "3. onnx: int8/fp32 size {size_int8_vs_fp32:.2f}x; batch-1 latency int8/eager "
        "{latency_int8_vs_eager:.2f}x, fp32/eager {latency_fp32_vs_eager:.2f}x; argmax "
        "agreement int8 vs fp32 {agreement_int8_fp32:.3f}, largest class-probability gap "
        "{max_prob_gap:.4f} (256 rows; the model fine-tuned "
        "{finetune_steps} steps to held-out accuracy {finetune_accuracy:.3f})".format(**onnx)
    )


if __name__ == "__main__":
    main()
