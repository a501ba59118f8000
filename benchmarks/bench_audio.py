"""Speech: decoding and feature throughput on 1-second clips, and serving latency of a WAV upload.

1. Decoding 1-second 16 kHz 16-bit WAV files from memory: soundfile (what the data stage uses)
   against the standard library's ``wave`` and ``scipy.io.wavfile``.
2. Log-mel features (40 bands, 25 ms window, 10 ms hop) of 1-second 16 kHz clips, in clips/s:
   ``compute_features`` on a batch (training) and on one clip per call (serving), against the
   libraries called directly in a loop, one clip at a time: ``scipy.fft`` (the FFT we use),
   ``numpy.fft`` and ``torch.stft`` (plus librosa when it is installed).
3. End-to-end latency of ``POST /predict`` on a real `lapp serve` process for one 1-second WAV
   (raw body and multipart upload), the same clip as base64 JSON, and its precomputed
   spectrogram as JSON: p50/p99 over sequential requests on one keep-alive connection.

    python benchmarks/bench_audio.py [--clips 512] [--requests 300]

Prints tables; asserts nothing. Timings depend on what else the machine runs (the load average
is printed with them).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "outputs" / "bench" / "audio"
RATE = 16000


def _rate(fn, count: int, repeat: int = 3) -> float:
    """Best of ``repeat`` runs of ``fn()`` (which handles ``count`` clips), in clips/s."""
    fn()
    best = min(_timed(fn) for _ in range(repeat))
    return count / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))


def _clips(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    tones = np.sin(2 * np.pi * rng.uniform(200, 3000, (n, 1)) * t)
    return (0.3 * tones + 0.05 * rng.standard_normal((n, RATE))).astype(np.float32)


def bench_decoding(clips: np.ndarray) -> None:
    import soundfile as sf
    from scipy.io import wavfile

    from lightning_app.data.audio.clips import load_clip
    from lightning_app.data.audio.features import AudioSettings

    files = []
    for x in clips:
        buf = io.BytesIO()
        sf.write(buf, x, RATE, subtype="PCM_16", format="WAV")
        files.append(buf.getvalue())
    settings = AudioSettings(sample_rate=RATE, duration=1.0)

    def stdlib_wave():
        for data in files:
            with wave.open(io.BytesIO(data)) as w:
                np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768

    rows = [
        [
            "soundfile.read (float32)",
            lambda: [sf.read(io.BytesIO(d), dtype="float32") for d in files],
        ],
        ["stdlib wave + numpy", stdlib_wave],
        ["scipy.io.wavfile.read", lambda: [wavfile.read(io.BytesIO(d)) for d in files]],
        ["load_clip (soundfile + fit)", lambda: [load_clip(d, settings) for d in files]],
    ]
    base = None
    out = []
    for name, fn in rows:
        rate = _rate(fn, len(files))
        base = base or rate
        out.append([name, f"{rate:,.0f}", f"{rate / base:.2f}"])
    _table("Decoding 1-s 16 kHz PCM16 WAV from memory", ["reader", "clips/s", "vs soundfile"], out)


def _direct_scipy(window: np.ndarray, mel: np.ndarray, hop: int, n_fft: int):
    import scipy.fft

    def one(x: np.ndarray) -> np.ndarray:
        padded = np.pad(x, n_fft // 2)
        frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * window
        spec = scipy.fft.rfft(frames, axis=-1)
        return np.log((spec.real**2 + spec.imag**2) @ mel + 1e-6)

    return one


def bench_features(clips: np.ndarray) -> None:
    import torch

    from lightning_app.data.audio.features import (
        AudioSettings,
        _tables,
        compute_features,
        mel_filterbank,
    )

    torch.set_num_threads(1)
    s = AudioSettings(sample_rate=RATE, duration=1.0, n_mels=40, layout="sequence")
    window = _tables(s)[0]
    mel = mel_filterbank(RATE, s.fft_size, 40, s.fmin, s.top_hz).astype(np.float32)
    scipy_one = _direct_scipy(window, mel, s.hop_length, s.fft_size)

    def numpy_one(x: np.ndarray) -> np.ndarray:
        padded = np.pad(x, s.fft_size // 2)
        frames = (
            np.lib.stride_tricks.sliding_window_view(padded, s.fft_size)[:: s.hop_length] * window
        )
        spec = np.fft.rfft(frames, axis=-1)
        return np.log((spec.real**2 + spec.imag**2) @ mel + 1e-6)

    tw, tmel = torch.hann_window(s.win_length), torch.from_numpy(mel)
    tclips = torch.from_numpy(clips)

    def torch_stft(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            x,
            s.fft_size,
            s.hop_length,
            s.win_length,
            tw,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return torch.log(spec.abs().pow(2).transpose(-1, -2) @ tmel + 1e-6)

    n = len(clips)
    rows = [
        ["compute_features, batch (training)", lambda: compute_features(clips, s)],
        [
            "compute_features, 1 clip per call (serving)",
            lambda: [compute_features(x, s) for x in clips],
        ],
        ["scipy.fft direct, loop (baseline)", lambda: [scipy_one(x) for x in clips]],
        ["numpy.fft direct, loop", lambda: [numpy_one(x) for x in clips]],
        ["torch.stft, loop (1 thread)", lambda: [torch_stft(x) for x in tclips]],
        ["torch.stft, batch (1 thread)", lambda: torch_stft(tclips)],
    ]
    try:
        import librosa

        rows.append(["librosa.feature.melspectrogram, loop", lambda: [librosa.feature.melspectrogram(y=x, sr=RATE, n_fft=s.fft_size, hop_length=s.hop_length, win_length=s.win_length, n_mels=40) for x in clips]])  # fmt: skip
    except ImportError:
        rows.append(["librosa", None])
    results = {name: (_rate(fn, n) if fn else None) for name, fn in rows}
    base = results["scipy.fft direct, loop (baseline)"]
    out = [
        [name, f"{r:,.0f}" if r else "not installed", f"{r / base:.2f}" if r else "-"]
        for name, r in results.items()
    ]
    _table(
        f"Log-mel of 1-s 16 kHz clips ({n} clips, 40 bands, 25/10 ms, 1 thread)",
        ["how", "clips/s", "vs baseline"],
        out,
    )


# -- serving -----------------------------------------------------------------------------------
def _train_model() -> Path:
    """A small keyword model at 16 kHz, 1 s (trained once; reused while outputs/ holds it)."""
    if (RUN / "model.onnx").is_file():
        return RUN
    sys.path.insert(0, str(ROOT))
    from lightning_app.recipes.train import train
    from tests.conftest import compose
    from tests.data.audio.synth import write_dataset

    data = write_dataset(RUN.parent / "audio_data", per_class=16, rate=RATE, seconds=1.0)
    overrides = [
        "experiment=keywords_cnn", f"data.source.root={data}", "trainer.max_epochs=3", "logger=none",
        "callbacks=none", "trainer.enable_progress_bar=false", "deployment.exporter=legacy",
        "deployment.report=false", "deployment.benchmark.iterations=5", f"paths.run_dir={RUN}",
    ]  # fmt: skip
    train(compose("train", overrides))
    return RUN


def _serve(run_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """Start `lapp serve` (output to ``log``, so no pipe can fill) and wait until it is ready."""
    import httpx

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lightning_app.cli", "serve", f"run_dir={run_dir}", "serve.port=0"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        urls = [
            ln.rsplit(" at ", 1)[1].strip()
            for ln in log.read_text().splitlines()
            if " at http://" in ln
        ]
        if urls:
            try:
                if httpx.get(f"{urls[0]}/ready", timeout=2).status_code == 200:
                    return proc, urls[0]
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"lapp serve did not start:\n{log.read_text()[-2000:]}")


def bench_serving(requests: int) -> None:
    import httpx
    import soundfile as sf

    run_dir = _train_model()
    clip = _clips(1)[0]
    buf = io.BytesIO()
    sf.write(buf, clip, RATE, subtype="PCM_16", format="WAV")
    wav = buf.getvalue()
    from lightning_app.data.audio.features import AudioSettings, compute_features

    state = json.loads((run_dir / "preprocessing.json").read_text())["audio"]
    spectrogram = compute_features(clip, AudioSettings.from_state(state))[0].tolist()
    proc, url = _serve(run_dir, run_dir / "serve.log")
    forms = {
        "WAV body (audio/wav)": {"content": wav, "headers": {"content-type": "audio/wav"}},
        "WAV multipart upload": {"files": {"file": ("clip.wav", wav, "audio/wav")}},
        "base64 WAV in JSON": {"json": {"instances": [{"audio": base64.b64encode(wav).decode()}]}},
        "spectrogram JSON (no audio work)": {"json": {"instances": [spectrogram]}},
    }
    rows = []
    try:
        with httpx.Client(timeout=30) as client:
            for name, kwargs in forms.items():
                for _ in range(20):
                    assert client.post(f"{url}/predict", **kwargs).status_code == 200
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    resp = client.post(f"{url}/predict", **kwargs)
                    times.append(time.perf_counter() - t0)
                    if resp.status_code != 200:
                        raise SystemExit(f"{name}: {resp.status_code} {resp.text[:200]}")
                p50, p99 = np.percentile(np.array(times) * 1000, [50, 99])
                rows.append(
                    [name, f"{len(wav) if 'WAV' in name else '-'}", f"{p50:.2f}", f"{p99:.2f}"]
                )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    _table(
        f"POST /predict, one 1-s 16 kHz clip, {requests} sequential requests",
        ["request", "bytes", "p50 ms", "p99 ms"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    clips = _clips(args.clips)
    bench_decoding(clips)
    bench_features(clips)
    bench_serving(args.requests)
    print(f"\nload average {os.getloadavg()[0]:.2f} after the run")


if __name__ == "__main__":
    main()
