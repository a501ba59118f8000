"""The run directory contract: paths of artifacts and atomic writes.

A run directory is the hand-off between stages and tools (`lapp eval`, `lapp export`,
`lapp serve` take one and need nothing else). Every artifact is written to a temporary file in
the same directory and renamed into place, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_app.errors import RunDirError

CONFIG_FILE = ".hydra/config.yaml"
HYDRA_FILE = ".hydra/hydra.yaml"
OVERRIDES_FILE = ".hydra/overrides.yaml"
CHECKPOINT_DIR = "checkpoints"
LAST_CKPT = "checkpoints/last.ckpt"
BEST_CKPT = "checkpoints/best.ckpt"
METRICS_FILE = "metrics.json"
PREPROCESSING_FILE = "preprocessing.json"
REPORT_FILE = "report.md"
DATA_REPORT_FILE = "data_report.md"
REPORT_FIGURES = {
    "curves": "learning_curves.png",
    "confusion": "confusion_matrix.png",
    "artifacts": "artifacts.png",
}
LOG_DIR = "logs"
METRICS_LOG = "logs/metrics.csv"
ARTIFACT_SUFFIX = ".onnx"
DEFAULT_ARTIFACT = "model.onnx"
DEFAULT_VARIANT = "fp32"


@dataclass(frozen=True)
class RunDir:
    """Every artifact path of one run directory.

    Args:
        root: the run directory (``outputs/<task>/runs/<timestamp>``).
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        """The resolved config (rerunnable as is)."""
        return self.root / CONFIG_FILE

    @property
    def hydra(self) -> Path:
        """Hydra's own record of the run (config group choices, ...)."""
        return self.root / HYDRA_FILE

    @property
    def overrides(self) -> Path:
        """The command-line overrides of the run."""
        return self.root / OVERRIDES_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def last_ckpt(self) -> Path:
        return self.root / LAST_CKPT

    @property
    def best_ckpt(self) -> Path:
        return self.root / BEST_CKPT

    @property
    def metrics(self) -> Path:
        """Test metrics of each artifact, sizes, latencies, parity error."""
        return self.root / METRICS_FILE

    @property
    def preprocessing(self) -> Path:
        """The fitted preprocessing statistics."""
        return self.root / PREPROCESSING_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def data_report(self) -> Path:
        """The data stage's findings (rows dropped, values repaired, class balance)."""
        return self.root / DATA_REPORT_FILE

    def figure(self, kind: str) -> Path:
        """A report figure: ``curves``, ``confusion`` or ``artifacts`` (``REPORT_FIGURES``)."""
        return self.root / REPORT_FIGURES[kind]

    @property
    def logs(self) -> Path:
        return self.root / LOG_DIR

    @property
    def metrics_log(self) -> Path:
        """The CSV logger's per-epoch metrics."""
        return self.root / METRICS_LOG

    def file(self, name: str) -> Path:
        """A top-level file of the run directory (a report plot, ...)."""
        return self.root / name

    def artifact(self, variant: str | None = None) -> Path:
        """``model.onnx`` (``fp32``) or ``model.<variant>.onnx``."""
        if not variant or variant == DEFAULT_VARIANT:
            return self.root / DEFAULT_ARTIFACT
        return self.root / f"model.{variant}{ARTIFACT_SUFFIX}"

    def artifacts(self) -> list[Path]:
        """The exported ONNX files present, sorted by name."""
        return sorted(self.root.glob(f"model*{ARTIFACT_SUFFIX}"))

    @staticmethod
    def variant_of(name: str) -> str:
        """The variant an artifact file name stands for (``model.int8.onnx`` -> ``int8``)."""
        if name == DEFAULT_ARTIFACT:
            return DEFAULT_VARIANT
        return name[len("model.") : -len(ARTIFACT_SUFFIX)]


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(
    path: str | Path, write: Callable[[Any], None], mode: str = "wb", durable: bool = True
) -> Path:
    """Write a file through a temporary sibling and rename it into place.

    Args:
        path: destination file.
        write: called with an open file object (binary unless ``mode`` is ``"w"``).
        mode: ``"wb"`` or ``"w"``.
        durable: fsync before the rename, so the file also survives a power loss. The rename
            alone already protects against the process being killed at any point.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; artifacts get the usual mode
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_safe(value: Any) -> Any:
    """Turn NaN/inf into None and numpy/torch scalars into Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON (non-finite floats become null)."""
    text = json.dumps(_json_safe(data), indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda fh: fh.write(text), mode="w")


def read_json(path: str | Path) -> Any:
    """Read a JSON artifact, with a clear error when it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"missing file: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunDirError(f"corrupt JSON in {path}: {err}") from err


def update_metrics(run_dir: str | Path, new: dict[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into the run's ``metrics.json`` (created when absent) and return the result."""
    path = RunDir(run_dir).metrics
    metrics = read_json(path) if path.is_file() else {}
    metrics.update(new)
    write_json(path, metrics)
    return metrics


def require_run_dir(run_dir: str | Path | None) -> Path:
    """Check that ``run_dir`` is a run directory (it holds the resolved config)."""
    if run_dir in (None, ""):
        raise RunDirError(
            "no run directory given: pass run_dir=PATH (a directory written by `lapp train`)"
        )
    path = Path(str(run_dir)).expanduser()
    if not path.is_dir():
        raise RunDirError(f"run directory not found: {path}")
    if not (path / CONFIG_FILE).is_file():
        raise RunDirError(
            f"{path} is not a run directory: {CONFIG_FILE} is missing "
            "(pass a directory written by `lapp train`)"
        )
    return path


def find_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """Return the run's ``best`` (falling back to ``last``) or ``last`` checkpoint."""
    candidates = [BEST_CKPT, LAST_CKPT] if which == "best" else [LAST_CKPT]
    for rel in candidates:
        if (run_dir / rel).is_file():
            return run_dir / rel
    raise RunDirError(
        f"no checkpoint in {run_dir / CHECKPOINT_DIR} (looked for {', '.join(candidates)})"
    )
