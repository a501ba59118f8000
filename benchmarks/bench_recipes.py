"""Recipes on data nobody tuned them for: each ``experiment=`` recipe beside a scikit-learn peer.

For every recipe in ``conf/experiment/`` a few GENERATED data sets (``recipe_data.py``: speech
from ``espeak-ng`` + ``sox`` at other speeds and pitches, clean and noisy; tables with other
column mixes and mess; texts; digits and shapes as MNIST-format images at other scales) are
written once under ``--data-dir``. The recipe trains on each as a user would run it
(``lapp train experiment=NAME`` + the data's path; no export) and its test accuracy is printed
beside a logistic regression on the same features (pixels, log-mel spectrograms, one-hot +
scaled columns, word counts) fitted on the same training rows and scored on the same test rows.
The goal: recipe >= peer - 0.5 point everywhere. One training at a time, torch on 1 thread.

    python benchmarks/bench_recipes.py [--recipes keywords_cnn,csv_mlp] [--sets speech_clean]
    make bench ARGS="recipes -- --recipes csv_mlp"

Speech needs the ``espeak-ng`` and ``sox`` programs (``apt-get install espeak-ng sox``); where
either is missing the speech sets are skipped, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import recipe_data as gen  # noqa: E402

TARGET = -0.5  # points: recipe accuracy - peer accuracy must stay above this

# recipe -> the generated sets it is scored on
PLAN = {
    "csv_mlp": list(gen.TABLE_SETS),
    "digits_cnn": ["digits_16px", "digits_28px_noisy"],
    "digits_mlp": ["digits_16px", "digits_28px_noisy"],
    "fashion_mnist_cnn": ["shapes_28px", "shapes_28px_textured"],
    "keywords_cnn": list(gen.SPEECH_SETS),
    "mnist_mlp": ["digits_28px_noisy", "shapes_28px"],
    "text_csv_rnn": list(gen.TEXT_SETS),
}

# A benchmark run: no export, no logger, no progress output; everything else is the recipe's.
QUIET = [
    "deployment=none",
    "logger=none",
    "threads=1",
    "~callbacks.progress_bar",
    "~callbacks.lr_monitor",
    "~callbacks.model_summary",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


# -- data ------------------------------------------------------------------------------------------
def materialize(name: str, data_dir: Path) -> Path:
    """Write set ``name`` under ``data_dir`` unless it is there already; return its path."""
    path = data_dir / name
    done = path / ".complete"
    if done.exists():
        return path
    started = time.perf_counter()
    if name in gen.SPEECH_SETS:
        gen.make_speech(path, name, seed=sorted(gen.SPEECH_SETS).index(name) + 10)
    elif name in gen.TABLE_SETS or name in gen.TEXT_SETS:
        path.mkdir(parents=True, exist_ok=True)
        frame = (gen.TABLE_SETS | gen.TEXT_SETS)[name]()
        frame.to_csv(path / "data.csv", index=False)
    else:
        x, y = gen.IMAGE_SETS[name]()
        gen.write_idx_pair(path, x, y, n_test=gen.IMAGE_TEST, seed=0)
    done.write_text("")
    print(f"  generated {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def data_overrides(recipe: str, name: str, path: Path) -> list[str]:
    """The command-line overrides pointing ``recipe`` at set ``name``."""
    if name in gen.SPEECH_SETS:
        return [f"data.source.root={path}"]
    if name in gen.TABLE_SETS:
        extra = ["data.source.drop_columns=[id]"] if name == "table_wide_imbalanced" else []
        return [f"data.source.path={path / 'data.csv'}", "data.source.target=label",
                "data.split.column=split", *extra]  # fmt: skip
    if name in gen.TEXT_SETS:
        return [f"data.source.path={path / 'data.csv'}", "data.split.column=split"]
    # MNIST-format files: the digits recipes read them through data=mnist
    swap = ["data=mnist"] if recipe.startswith("digits_") else []
    return [*swap, f"data.data_dir={path}"]


# -- the recipe ------------------------------------------------------------------------------------
def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from lightning_app.config.schemas import register_configs

    register_configs()
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def run_recipe(recipe: str, overrides: list[str], work: Path) -> dict:
    """Train ``experiment=recipe`` with ``overrides``; test accuracy, epochs and seconds."""
    import logging

    from lightning_app.recipes.train import train
    from lightning_app.runs import read_json

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix=f"{recipe}-"))
    cfg = compose([f"experiment={recipe}", *overrides, *QUIET, f"paths.run_dir={run_dir}"])
    started = time.perf_counter()
    with open(run_dir / "train.log", "w") as log, redirect_stdout(log), redirect_stderr(log):
        train(cfg)
    seconds = time.perf_counter() - started
    metrics = read_json(run_dir / "metrics.json")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    epochs = None
    if ckpt.exists():
        import torch

        epochs = torch.load(ckpt, map_location="cpu", weights_only=True).get("epoch", -1) + 1
    return {"acc": float(metrics["test/acc"]), "seconds": seconds, "epochs": epochs}


# -- the peer --------------------------------------------------------------------------------------
def _logreg():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, C=1.0)


def peer_arrays(recipe: str, overrides: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The recipe's own source read as it reads it: flat features, labels, split names."""
    from hydra.utils import instantiate

    cfg = compose([f"experiment={recipe}", *overrides])
    raw = instantiate(cfg.data.source).load()
    split = raw.split if raw.split is not None else np.full(len(raw.y), "train", dtype=object)
    return np.asarray(raw.x, dtype=np.float32).reshape(len(raw.y), -1), np.asarray(raw.y), split


def run_peer(recipe: str, name: str, path: Path, overrides: list[str]) -> float:
    """A logistic regression on the same features, fitted on the training rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if name in gen.TABLE_SETS or name in gen.TEXT_SETS:
        frame = pd.read_csv(path / "data.csv")
        train, test = frame[frame.split == "train"], frame[frame.split == "test"]
        if name in gen.TEXT_SETS:
            model = make_pipeline(CountVectorizer(token_pattern=r"(?u)\b\w+\b"), _logreg())
            model.fit(train.text, train.label)
            return float(model.score(test.text, test.label))
        features = [c for c in frame.columns if c not in ("label", "split", "id")]
        cats = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
        nums = [c for c in features if c not in cats]
        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                  OneHotEncoder(handle_unknown="ignore")), cats),
        ])  # fmt: skip
        model = make_pipeline(prep, _logreg())
        model.fit(train[features], train.label.astype(str))
        return float(model.score(test[features], test.label.astype(str)))
    x, y, split = peer_arrays(recipe, overrides)
    # MNIST-format files mark train and test only: the peer then fits on the rows the recipe
    # splits into train and validation (10% more rows than the recipe trains on).
    fit, test = split == "train", split == "test"
    model = make_pipeline(StandardScaler(), _logreg())
    model.fit(x[fit], y[fit])
    return float(model.score(x[test], y[test]))


# -- main ------------------------------------------------------------------------------------------
def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=",".join(PLAN), help="comma-separated recipe names")
    parser.add_argument("--sets", default="", help="comma-separated data set names (default all)")
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "outputs" / "bench_recipes" / "data"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="an extra `lapp train` override for every recipe run (repeatable), to try a change",
    )
    args = parser.parse_args(argv)
    args.recipes = [r for r in args.recipes.split(",") if r]
    unknown = [r for r in args.recipes if r not in PLAN]
    all_sets = sorted({s for sets in PLAN.values() for s in sets})
    args.sets = [s for s in args.sets.split(",") if s]
    unknown_sets = [s for s in args.sets if s not in all_sets]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {list(PLAN)}")
    if unknown_sets:
        parser.error(f"unknown data set(s) {unknown_sets}; choose from {all_sets}")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    import torch

    torch.set_num_threads(1)
    missing = gen.speech_tools_missing()
    if missing:
        print(
            f"speech sets SKIPPED: {', '.join(missing)} not found (apt-get install espeak-ng sox)"
        )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_recipes-") as work:
        for recipe in args.recipes:
            for name in PLAN[recipe]:
                if args.sets and name not in args.sets:
                    continue
                if name in gen.SPEECH_SETS and missing:
                    rows.append(
                        {"recipe": recipe, "set": name, "skipped": "no " + "/".join(missing)}
                    )
                    continue
                path = materialize(name, args.data_dir)
                overrides = data_overrides(recipe, name, path)
                try:
                    peer = run_peer(recipe, name, path, overrides)
                    result = run_recipe(recipe, [*overrides, *args.override], Path(work))
                except Exception as err:  # one failed run must not hide the others' rows
                    rows.append(
                        {"recipe": recipe, "set": name, "skipped": f"FAILED: {err!r}"[:300]}
                    )
                    print(f"  {recipe} {name}: FAILED: {err!r}", flush=True)
                    continue
                delta = 100 * (result["acc"] - peer)
                rows.append({"recipe": recipe, "set": name, "peer": peer, **result, "delta": delta})
                print(
                    f"  {recipe:18s} {name:22s} recipe {result['acc']:.4f}  peer {peer:.4f}  "
                    f"delta {delta:+5.1f}  ({result['epochs']} epochs, {result['seconds']:.0f} s)",
                    flush=True,
                )
    print(
        f"\n{'recipe':18s} {'data set':22s} {'recipe':>7s} {'peer':>7s} {'delta':>6s} {'epochs':>6s} {'s':>5s}  ok"
    )
    for r in rows:
        if "skipped" in r:
            print(f"{r['recipe']:18s} {r['set']:22s} skipped ({r['skipped']})")
            continue
        ok = "yes" if r["delta"] >= TARGET else "NO"
        print(
            f"{r['recipe']:18s} {r['set']:22s} {r['acc']:7.4f} {r['peer']:7.4f} {r['delta']:+6.1f} "
            f"{r['epochs'] or '?':>6} {r['seconds']:5.0f}  {ok}"
        )
    measured = [r for r in rows if "delta" in r]
    short = [r for r in measured if r["delta"] < TARGET]
    print(
        f"\n{len(measured) - len(short)}/{len(measured)} measured within {TARGET:+.1f} point of the peer (accuracy points)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if any(r.get("skipped", "").startswith("FAILED") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
