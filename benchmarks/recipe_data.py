"""Generated data sets for ``bench_recipes``: speech, tables, texts and images none of the
``experiment=`` recipes was tuned on (and unlike the test fixtures).

Every generator is seeded and writes the files a recipe reads (a WAV folder tree, a CSV, IDX
files) with an explicit train/val/test split, so the recipe and its scikit-learn peer see the
same rows. Speech needs the ``espeak-ng`` and ``sox`` programs (Debian packages of those names).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")

# -- speech ----------------------------------------------------------------------------------------
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
VARIANTS = ("", "+m3", "+f2", "+f4", "+m7", "+klatt")
PER_WORD = {"train": 24, "val": 8, "test": 16}

# name -> (words per minute range, pitch 0-99 range, SNR dB range or None, reverb or None)
SPEECH_SETS = {
    "speech_clean": ((140, 190), (35, 65), None, None),
    "speech_fast_high": ((220, 320), (65, 99), None, None),
    "speech_noisy_slow": ((95, 140), (10, 45), (3.0, 15.0), 40),
}


def speech_tools_missing() -> list[str]:
    """The programs speech generation needs that are not on PATH."""
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


def _speak(job: tuple) -> None:
    word, voice, speed, pitch, lead, reverb, snr, seed, out = job
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), word],
            check=True,
            capture_output=True,
        )
        effects = ["pad", f"{lead:.3f}", "0"] + (["reverb", str(reverb)] if reverb else [])
        cmd = ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out), *effects]
        subprocess.run(cmd, check=True, capture_output=True)
    if snr is not None:
        wave, rate = sf.read(out, dtype="float32")
        rng = np.random.default_rng(seed)
        # Brown-ish noise (integrated white noise, high-passed) plus white: field-like hiss and rumble.
        white = rng.standard_normal(len(wave)).astype(np.float32)
        brown = np.cumsum(white)
        brown -= np.convolve(brown, np.ones(400) / 400, mode="same")
        noise = white / white.std() + 2.0 * brown / (brown.std() + 1e-9)
        power = float(np.mean(wave[np.abs(wave) > 0.02 * np.abs(wave).max()] ** 2))
        noise *= np.sqrt(power / 10 ** (snr / 10) / np.mean(noise**2))
        mixed = np.clip(wave + noise, -1.0, 1.0)
        sf.write(out, mixed, rate, subtype="PCM_16")


def make_speech(root: Path, name: str, seed: int) -> Path:
    """``root/<train|val|test>/<word>/<i>.wav``: ten words spoken by varied synthetic voices."""
    (wpm_lo, wpm_hi), (p_lo, p_hi), snr, reverb = SPEECH_SETS[name]
    rng = np.random.default_rng(seed)
    jobs = []
    for split, count in PER_WORD.items():
        for word in WORDS:
            folder = root / split / word
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                voice = str(rng.choice(VOICES)) + str(rng.choice(VARIANTS))
                jobs.append(
                    (
                        word,
                        voice,
                        int(rng.integers(wpm_lo, wpm_hi + 1)),
                        int(rng.integers(p_lo, p_hi + 1)),
                        float(rng.uniform(0.0, 0.35)),  # leading silence: where the word sits
                        reverb,
                        None if snr is None else float(rng.uniform(*snr)),
                        int(rng.integers(2**31)),
                        folder / f"{i:03d}.wav",
                    )
                )
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_speak, jobs))
    return root


# -- tables ----------------------------------------------------------------------------------------
def _split_column(y: np.ndarray, rng: np.random.Generator, val=0.15, test=0.3) -> np.ndarray:
    """A stratified train/val/test assignment."""
    split = np.empty(len(y), dtype=object)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test, n_val = round(len(idx) * test), round(len(idx) * val)
        split[idx[:n_test]] = "test"
        split[idx[n_test : n_test + n_val]] = "val"
        split[idx[n_test + n_val :]] = "train"
    return split


def table_numeric_scales(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Eight numeric columns on wildly different scales (one heavy-tailed), 10% missing in
    three of them, three classes from a mostly linear rule with one interaction, 5% label noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 8))
    cols = {
        "income": np.exp(10 + 0.8 * z[:, 0]),
        "age": 40 + 12 * z[:, 1],
        "ratio": 0.01 * z[:, 2],
        "count": np.round(np.exp(1.5 + 0.7 * z[:, 3])),
        "temp": 1000 + 300 * z[:, 4],
        "noise_a": z[:, 5],
        "noise_b": 50 * z[:, 6],
        "score": z[:, 7],
    }
    logits = np.stack(
        [1.5 * z[:, 0] - z[:, 2], 1.2 * z[:, 1] + z[:, 3] * z[:, 4], 1.3 * z[:, 7] - 0.8 * z[:, 4]],
        axis=1,
    )
    y = logits.argmax(1)
    flip = rng.random(n) < 0.05
    y[flip] = rng.integers(0, 3, flip.sum())
    frame = pd.DataFrame(cols)
    for c in ("income", "ratio", "temp"):
        frame.loc[rng.random(n) < 0.1, c] = np.nan
    frame["label"] = np.array(["low", "mid", "high"])[y]
    frame["split"] = _split_column(y, rng)
    return frame


def table_categorical(n: int = 4000, seed: int = 1) -> pd.DataFrame:
    """Mostly categorical: four text columns (one with 40 levels, rare ones included), two
    numerics with gross outliers, missing cells in both kinds; a binary target."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west", "centre"], n)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1])
    device = rng.choice(["ios", "android", "web"], n)
    city = rng.choice(
        [f"city_{i:02d}" for i in range(40)], n, p=np.r_[np.full(20, 0.04), np.full(20, 0.01)]
    )
    tenure = rng.gamma(2.0, 12.0, n)
    spend = rng.normal(60, 20, n)
    effect = (
        {"north": 0.8, "south": -0.6, "east": 0.2, "west": -0.3, "centre": 0.0}
        | {"basic": -0.9, "plus": 0.3, "pro": 1.4}
        | {"ios": 0.4, "android": -0.2, "web": -0.4}
    )
    city_effect = dict(zip(sorted(set(city)), rng.normal(0, 0.6, 40), strict=False))
    logit = (
        np.array(
            [
                effect[r] + effect[p] + effect[d]
                for r, p, d in zip(region, plan, device, strict=True)
            ]
        )
        + np.array([city_effect[c] for c in city])
        + 0.04 * (tenure - 24)
        - 0.03 * (spend - 60)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-2.0 * logit))).astype(int)
    frame = pd.DataFrame({"region": region, "plan": plan, "device": device, "city": city, "tenure": tenure, "spend": spend})  # fmt: skip
    out = rng.random(n) < 0.02
    frame.loc[out, "spend"] = frame.loc[out, "spend"] * 100  # entry errors
    for c in ("region", "device", "tenure"):
        frame.loc[rng.random(n) < 0.08, c] = None
    frame["label"] = np.array(["stay", "churn"])[y]
    frame["split"] = _split_column(y, rng)
    return frame


def table_wide_imbalanced(n: int = 4000, seed: int = 2) -> pd.DataFrame:
    """Thirty numeric columns, six informative, an id column to drop, classes 75/18/7 %."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 30))
    w = np.zeros((30, 3))
    w[:6] = rng.normal(0, 1.5, (6, 3))
    logits = x @ w + np.log([0.75, 0.18, 0.07]) * 1.8
    y = np.array([rng.choice(3, p=np.exp(r - r.max()) / np.exp(r - r.max()).sum()) for r in logits])
    frame = pd.DataFrame(x * rng.uniform(0.1, 100, 30), columns=[f"f{i:02d}" for i in range(30)])
    frame.insert(0, "id", np.arange(n) * 7 + 1000)
    frame["label"] = y
    frame["split"] = _split_column(y, rng)
    return frame


TABLE_SETS = {
    "table_numeric_scales": table_numeric_scales,
    "table_categorical": table_categorical,
    "table_wide_imbalanced": table_wide_imbalanced,
}


# -- text ------------------------------------------------------------------------------------------
def text_negation(n: int = 2000, seed: int = 3) -> pd.DataFrame:
    """Reviews whose sentiment words may be negated ("not good"), with filler words around."""
    rng = np.random.default_rng(seed)
    good = ["good", "great", "excellent", "lovely", "reliable", "solid", "pleasant", "sturdy"]
    bad = ["bad", "awful", "terrible", "flimsy", "broken", "poor", "noisy", "useless"]
    nouns = ["phone", "chair", "lamp", "kettle", "jacket", "bike", "camera", "desk", "screen"]
    filler = [f"w{i}" for i in range(150)] + [
        "the",
        "a",
        "it",
        "was",
        "and",
        "this",
        "my",
        "really",
    ]
    texts, labels = [], []
    for _ in range(n):
        positive = rng.random() < 0.5
        negate = rng.random() < 0.35
        word = rng.choice(good if positive != negate else bad)
        core = ["the", str(rng.choice(nouns)), "is"] + (["not"] if negate else []) + [str(word)]
        words = list(rng.choice(filler, rng.integers(2, 12))) + core + list(rng.choice(filler, rng.integers(0, 8)))  # fmt: skip
        texts.append(" ".join(words).capitalize() + rng.choice([".", "!", " ..."]))
        labels.append("pos" if positive else "neg")
    y = np.array(labels)
    return pd.DataFrame({"text": texts, "label": y, "split": _split_column(y, rng)})


def text_topics(n: int = 2000, seed: int = 4) -> pd.DataFrame:
    """Four topics, each with its own 30 words, drowned in shared filler; 5% of topic words
    come from another topic."""
    rng = np.random.default_rng(seed)
    topics = ["sport", "cooking", "finance", "travel"]
    vocab = {t: [f"{t[:3]}{i}" for i in range(30)] for t in topics}
    filler = [f"f{i}" for i in range(300)]
    texts, labels = [], []
    for _ in range(n):
        topic = str(rng.choice(topics))
        words = list(rng.choice(filler, rng.integers(8, 40)))
        for _ in range(rng.integers(2, 5)):
            source = topic if rng.random() > 0.05 else str(rng.choice(topics))
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(vocab[source])))
        texts.append(" ".join(words))
        labels.append(topic)
    y = np.array(labels)
    return pd.DataFrame({"text": texts, "label": y, "split": _split_column(y, rng)})


TEXT_SETS = {"text_negation": text_negation, "text_topics": text_topics}


# -- images ----------------------------------------------------------------------------------------
def _affine(img: np.ndarray, size: int, rng: np.random.Generator, fill: float) -> np.ndarray:
    """``img`` (h, w) drawn into a ``size`` x ``size`` canvas with a random zoom, rotation, shift."""
    from scipy.ndimage import affine_transform

    h = img.shape[0]
    zoom = size / h * rng.uniform(0.6, 0.95)
    angle = np.deg2rad(rng.uniform(-12, 12))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / zoom
    centre_out = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
    offset = (h / 2 - 0.5) - rot @ (centre_out - 0.5)
    return affine_transform(img, rot, offset=offset, output_shape=(size, size), order=1, cval=fill)


def digits_images(size: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits redrawn at ``size`` x ``size`` (two random placements each)."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    bunch = load_digits()
    images = bunch.images / 16.0
    out, labels = [], []
    for _ in range(2):
        for img, label in zip(images, bunch.target, strict=True):
            out.append(_affine(img, size, rng, 0.0))
            labels.append(label)
    x = np.clip(np.stack(out) + noise * rng.standard_normal((len(out), size, size)), 0, 1)
    return (x * 255).round().astype(np.uint8), np.array(labels, dtype=np.uint8)


SHAPES = ("disc", "square", "tri_up", "tri_down", "cross", "ring", "hbar", "vbar", "diamond", "x")


def shape_images(n: int, size: int, textured: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten silhouettes (discs, rings, bars, crosses, ...) of random size and place, left-right
    symmetric classes (a mirrored image keeps its label); ``textured`` adds grain and clutter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = np.zeros((n, size, size), dtype=np.float32)
    y = np.arange(n) % len(SHAPES)
    rng.shuffle(y)
    for i, c in enumerate(y):
        r = rng.uniform(0.22, 0.42) * size
        cy, cx = rng.uniform(r * 0.8, size - r * 0.8, 2)
        dy, dx = (yy - cy) / r, (xx - cx) / r
        t = max(0.18, rng.uniform(0.2, 0.35))
        mask = {
            "disc": dy**2 + dx**2 < 1,
            "square": (abs(dy) < 0.8) & (abs(dx) < 0.8),
            "tri_up": (dy < 0.8) & (dy > -0.9 + 2 * abs(dx)),
            "tri_down": (dy > -0.8) & (dy < 0.9 - 2 * abs(dx)),
            "cross": ((abs(dx) < t) | (abs(dy) < t)) & (abs(dx) < 1) & (abs(dy) < 1),
            "ring": (dy**2 + dx**2 < 1) & (dy**2 + dx**2 > (1 - 1.6 * t) ** 2),
            "hbar": (abs(dy) < t * 1.3) & (abs(dx) < 1),
            "vbar": (abs(dx) < t * 1.3) & (abs(dy) < 1),
            "diamond": abs(dx) + abs(dy) < 1,
            "x": ((abs(dx - dy) < t * 1.4) | (abs(dx + dy) < t * 1.4))
            & (abs(dx) < 0.9)
            & (abs(dy) < 0.9),
        }[SHAPES[c]]
        x[i] = mask * rng.uniform(0.55, 1.0)
        if textured:
            x[i] *= 1 - 0.5 * rng.random((size, size))  # grain inside the silhouette
            for _ in range(rng.integers(1, 4)):  # small clutter blobs
                by, bx = rng.uniform(0, size, 2)
                x[i] = np.maximum(x[i], ((yy - by) ** 2 + (xx - bx) ** 2 < rng.uniform(1, 4)) * rng.uniform(0.3, 0.8))  # fmt: skip
    x = np.clip(x + 0.08 * rng.standard_normal(x.shape), 0, 1)
    return (x * 255).round().astype(np.uint8), y.astype(np.uint8)


def write_idx_pair(directory: Path, x: np.ndarray, y: np.ndarray, n_test: int, seed: int) -> Path:
    """MNIST's four IDX files: the last ``n_test`` of a seeded shuffle are the test set."""
    from lightning_app.data.sources.idx import write_idx

    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    directory.mkdir(parents=True, exist_ok=True)
    for part, sl in (("train", slice(None, -n_test)), ("t10k", slice(-n_test, None))):
        write_idx(directory / f"{part}-images-idx3-ubyte", x[sl])
        write_idx(directory / f"{part}-labels-idx1-ubyte", y[sl])
    return directory


# name -> (images, labels) maker
IMAGE_SETS = {
    "digits_16px": lambda: digits_images(16, 0.05, seed=5),
    "digits_28px_noisy": lambda: digits_images(28, 0.2, seed=6),
    "shapes_28px": lambda: shape_images(3000, 28, textured=False, seed=7),
    "shapes_28px_textured": lambda: shape_images(3000, 28, textured=True, seed=8),
}
IMAGE_TEST = 1000
