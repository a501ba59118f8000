"""Fetching a file from a list of mirrors, with an MD5 check, a progress bar and an atomic rename."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from lightning_app.errors import DataError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def md5sum(path: str | Path) -> str:
    """Hex MD5 of a file (the checksum published for MNIST-style datasets)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, timeout: float, progress: bool) -> None:
    """Stream ``url`` into a temporary sibling of ``dest`` and rename it into place."""
    from tqdm.auto import tqdm

    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download(
    name: str,
    mirrors: list[str],
    dest_dir: str | Path,
    md5: str | None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``name`` from the first mirror that serves it with the right checksum.

    Args:
        name: file name, appended to each mirror's base URL.
        mirrors: base URLs ending in ``/`` (``https://``, ``http://`` or ``file://``).
        dest_dir: directory that receives the file.
        md5: expected hex MD5; None skips the check.
        timeout: seconds per network operation.
        progress: show a progress bar.

    Raises:
        DataError: every mirror failed; the message lists each attempt and how to place the
            file by hand.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    attempts = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        log.info("downloading %s", url)
        try:
            _fetch(url, dest, timeout, progress)
        except (urllib.error.URLError, OSError, ValueError) as err:
            attempts.append(f"{url}: {err}")
            continue
        if md5 is not None and (got := md5sum(dest)) != md5:
            dest.unlink(missing_ok=True)
            attempts.append(f"{url}: checksum mismatch (md5 {got}, expected {md5})")
            continue
        return dest
    tried = "\n".join(f"    {a}" for a in attempts) or "    (no mirrors configured)"
    raise DataError(
        f"could not download {name}:\n{tried}\n  place the file in {dest_dir.resolve()} yourself "
        "(gzipped or not), or add a reachable mirror to data.source.mirrors"
    )
