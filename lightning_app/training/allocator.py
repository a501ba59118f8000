"""Hand freed CPU memory back to the system (``release_freed_memory=true``).

glibc's ``malloc`` serves a block above its mmap threshold (128 KiB to begin with) from a
mapping of its own, unmapped when freed. But freeing such a block raises the threshold to the
block's size (up to 32 MiB), so from then on blocks of that size come from the heap, and a freed
heap block stays resident until whatever lies above it is freed as well. A training step frees
and allocates gigabytes of activations and gradients in pieces of a few MiB, so the process's
resident memory, and with it its peak, stays well above what the step ever holds at once.

A fixed threshold (which also ends the raising) maps each new block from ``threshold`` bytes up
on its own (free heap space that fits is still used first), returned when freed. The price is
that the next step's blocks are new pages the kernel must zero: a BERT-base fine-tuning step on
one thread took 1.0-1.3x as long, and the memory training adds above the loaded model peaked
19-76 % lower (README: Pretrained models, Training memory). The setting holds for the rest of
the process: later runs in it (sweep trials under Hydra's basic launcher) release freed memory
too.
"""

from __future__ import annotations

import ctypes
import logging
import os

from lightning_app.errors import ConfigError

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
RELEASE_THRESHOLD = 1 << 20  # 1 MiB: activations and gradients of any sizeable model


def _glibc_version() -> str | None:
    """glibc's version, or None where the C library is another (musl, macOS, Windows)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None


def _address(lib: ctypes.CDLL, name: str) -> int | None:
    """Where ``lib``'s symbol ``name`` points (``CDLL(None)``: the one the process uses)."""
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


def _libc():
    """glibc, whose ``mallopt`` the process's ``malloc`` obeys.

    Raises:
        ConfigError: the C library is not glibc, or another allocator (jemalloc, tcmalloc,
            mimalloc through ``LD_PRELOAD``) serves ``malloc``: glibc's ``mallopt`` would then
            succeed and change nothing.
    """
    if _glibc_version() is None:
        raise ConfigError(
            "release_freed_memory=true: sets glibc's malloc (Linux), which this platform does "
            "not use; set release_freed_memory=false"
        )
    libc, process = ctypes.CDLL("libc.so.6"), ctypes.CDLL(None)
    if any(_address(libc, f) != _address(process, f) for f in ("malloc", "free")):
        raise ConfigError(
            "release_freed_memory=true: another allocator than glibc's serves malloc in this "
            f"process (LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r}), and it would not obey "
            "glibc's setting; configure that allocator instead and set release_freed_memory=false"
        )
    return libc


def release_freed_memory(threshold: int = RELEASE_THRESHOLD) -> None:
    """From now on, for the rest of the process, map new blocks of ``threshold`` bytes and more
    on their own and give them back to the system when freed; release what the heap holds free
    now.

    Raises:
        ConfigError: glibc's malloc is not the process's (see :func:`_libc`).
    """
    libc = _libc()
    if libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(threshold)) != 1:
        raise ConfigError(f"release_freed_memory=true: glibc refused mmap threshold {threshold}")
    libc.malloc_trim(ctypes.c_size_t(0))
    log.info("freed blocks of %d KiB and more go back to the system", threshold // 1024)
