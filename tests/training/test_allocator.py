"""``release_freed_memory``: freed tensor memory goes back to the system, and the train recipe
sets it only when asked."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_app.errors import ConfigError
from lightning_app.training import allocator

ROOT = Path(__file__).resolve().parents[2]
# Frees one 4 MiB tensor (glibc's default then serves blocks up to that size from its heap),
# allocates 100 of 1.5 MiB and frees all but the last, whose place keeps the heap from shrinking;
# then the same with 200 of 512 KiB, below the 1 MiB threshold, which stay with the heap.
SCRIPT = """
import json, sys
import torch
from lightning_app.training.allocator import release_freed_memory

def rss():
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmRSS:"))

def held_and_kept(numel, count):
    base = rss()
    blocks = [torch.ones(numel) for _ in range(count)]
    held = rss() - base
    last = blocks[-1]
    del blocks
    return {"held": held, "kept": rss() - base}, last

if sys.argv[1] == "1":
    release_freed_memory()
warm = torch.ones(2**20)
del warm
big, last_big = held_and_kept(3 * 2**17, 100)
small, last_small = held_and_kept(2**17, 200)
print(json.dumps({"big": big, "small": small}))
"""
# Settings that change glibc's malloc for the child (or replace it) would void the comparison.
ALLOCATOR_ENV = ("LD_PRELOAD", "GLIBC_TUNABLES")

needs_glibc = pytest.mark.skipif(allocator._glibc_version() is None, reason="glibc's malloc only")


def _memory(release: bool) -> dict[str, dict[str, float]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ALLOCATOR_ENV and not (k.startswith("MALLOC_") and k.endswith("_"))
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "1" if release else "0"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_glibc
def test_freed_tensors_of_1_mib_and_more_leave_resident_memory_only_when_released():
    kept = _memory(release=False)["big"]
    released = _memory(release=True)
    for run in (kept, released["big"], released["small"]):
        assert run["held"] > 75, run  # 150 / 100 MiB were written
    assert kept["kept"] > 0.75 * kept["held"], kept  # glibc's default keeps them
    assert released["big"]["kept"] < 0.1 * released["big"]["held"], released
    assert released["small"]["kept"] > 0.75 * released["small"]["held"], released  # < 1 MiB


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value.value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad.value))
        return 1


def test_sets_the_mmap_threshold_and_trims(monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setattr(allocator, "_libc", lambda: libc)
    allocator.release_freed_memory()
    assert libc.calls == [("mallopt", -3, 1 << 20), ("malloc_trim", 0)]


def test_a_platform_without_glibc_gets_a_config_error_naming_the_key(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc_version", lambda: None)
    with pytest.raises(ConfigError, match=r"release_freed_memory=true.*release_freed_memory=false"):
        allocator.release_freed_memory()


@needs_glibc
def test_another_allocator_serving_malloc_is_a_config_error(monkeypatch):
    # As under LD_PRELOAD=libjemalloc.so: the process's malloc is not glibc's.
    monkeypatch.setattr(allocator, "_address", lambda lib, name: id(lib))
    with pytest.raises(ConfigError, match=r"another allocator than glibc's serves malloc"):
        allocator.release_freed_memory()


@needs_glibc
def test_glibc_serves_malloc_here():
    assert isinstance(allocator._libc(), ctypes.CDLL)


@pytest.mark.parametrize("release", [False, True])
def test_train_sets_the_allocator_only_when_asked(train_in_process, monkeypatch, release):
    calls = []
    monkeypatch.setattr(allocator, "release_freed_memory", lambda: calls.append(1))
    run_dir, _ = train_in_process([f"release_freed_memory={release}", "deployment=none"])
    assert (run_dir / "metrics.json").exists()
    assert len(calls) == int(release)
