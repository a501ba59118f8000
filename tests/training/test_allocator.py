"""``release_freed_memory``: freed tensor memory goes back to the system, and the train recipe
sets it only when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_app.errors import ConfigError
from lightning_app.training import allocator

ROOT = Path(__file__).resolve().parents[2]
# Frees one 4 MiB tensor (glibc then serves blocks up to that size from its heap), allocates 100
# of 2 MiB and frees all but the last, whose place at the heap's top keeps the heap from shrinking.
SCRIPT = """
import json, sys
import torch
from lightning_app.training.allocator import release_freed_memory

def rss():
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmRSS:"))

if sys.argv[1] == "1":
    release_freed_memory()
warm = torch.ones(2**20)
del warm
base = rss()
blocks = [torch.ones(2**19) for _ in range(100)]
held = rss() - base
last = blocks[-1]
del blocks
print(json.dumps({"held": held, "kept": rss() - base}))
"""

needs_glibc = pytest.mark.skipif(allocator._libc() is None, reason="glibc's malloc only")


def _memory(release: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "1" if release else "0"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_glibc
def test_freed_tensors_leave_resident_memory_only_when_released():
    kept = _memory(release=False)
    released = _memory(release=True)
    for run in (kept, released):
        assert run["held"] > 150, run  # 200 MiB were written
    assert kept["kept"] > 0.75 * kept["held"], kept  # glibc's default keeps them
    assert released["kept"] < 0.1 * released["held"], released


def test_a_platform_without_glibc_gets_a_config_error_naming_the_key(monkeypatch):
    monkeypatch.setattr(allocator, "_libc", lambda: None)
    with pytest.raises(ConfigError, match=r"release_freed_memory=true.*release_freed_memory=false"):
        allocator.release_freed_memory()


@pytest.mark.parametrize("release", [False, True])
def test_train_sets_the_allocator_only_when_asked(train_in_process, monkeypatch, release):
    calls = []
    monkeypatch.setattr(allocator, "release_freed_memory", lambda: calls.append(1))
    run_dir, _ = train_in_process([f"release_freed_memory={release}", "deployment=none"])
    assert (run_dir / "metrics.json").exists()
    assert len(calls) == int(release)
