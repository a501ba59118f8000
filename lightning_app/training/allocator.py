"""Hand freed CPU memory back to the system (``release_freed_memory=true``).

glibc's ``malloc`` serves a block above its mmap threshold (128 KiB to begin with) from a
mapping of its own, unmapped when freed. But freeing such a block raises the threshold to the
block's size (up to 32 MiB), so from then on blocks of that size come from the heap, and a freed
heap block stays resident until whatever lies above it is freed as well. A training step frees
and allocates gigabytes of activations and gradients in pieces of a few MiB, so the process's
resident memory, and with it its peak, stays well above what the step ever holds at once.

A fixed threshold (which also ends the raising) gives every block from ``threshold`` bytes up
its own mapping, returned when freed. The price is that the next step's blocks are new pages the
kernel must zero: a BERT-base fine-tuning step on one thread took 1.14-1.21x as long, for a
peak 19-76 % lower (README: Pretrained models, Training memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

from lightning_app.errors import ConfigError

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
RELEASE_THRESHOLD = 1 << 20  # 1 MiB: activations and gradients of any sizeable model


def _libc() -> ctypes.CDLL | None:
    """glibc, or None where the C library is another (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def release_freed_memory(threshold: int = RELEASE_THRESHOLD) -> None:
    """From now on, give blocks of ``threshold`` bytes and more back to the system when freed,
    and release what the heap holds free now.

    Raises:
        ConfigError: the C library is not glibc, whose ``mallopt`` this sets.
    """
    libc = _libc()
    if libc is None:
        raise ConfigError(
            "release_freed_memory=true: sets glibc's malloc (Linux), which this platform does "
            "not use; set release_freed_memory=false"
        )
    if libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(threshold)) != 1:
        raise ConfigError(f"release_freed_memory=true: glibc refused mmap threshold {threshold}")
    libc.malloc_trim(ctypes.c_size_t(0))
    log.info("freed blocks of %d KiB and more go back to the system", threshold // 1024)
