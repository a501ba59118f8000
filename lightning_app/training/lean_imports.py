"""Keep optional integrations that `lapp` never uses from loading with Lightning.

``import pytorch_lightning`` imports torchmetrics, and torchmetrics imports transformers at once
when it is installed (for its BERTScore, InfoLM and CLIP metrics): about half a second on every
run, pretrained or not. `lapp` computes none of those metrics (its metrics are named in
``lightning_app.metrics``), so its own processes tell torchmetrics that transformers is absent.
Runs that fine-tune a pretrained model import transformers themselves, as before.

Only the `lapp` console script calls :func:`skip_torchmetrics_model_metrics`; importing
``lightning_app`` as a library changes nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

TORCHMETRICS_FLAGS = "torchmetrics.utilities.imports"
# torchmetrics' availability flags for transformers (RequirementCache objects, checked lazily).
TRANSFORMERS_FLAGS = (
    "_TRANSFORMERS_AVAILABLE",
    "_TRANSFORMERS_GREATER_EQUAL_4_4",
    "_TRANSFORMERS_GREATER_EQUAL_4_10",
)


def _mark_absent(module: Any) -> None:
    for name in TRANSFORMERS_FLAGS:
        flag = getattr(module, name, None)
        if flag is not None:
            flag.available = False  # RequirementCache checks only when this is unset
            flag.message = "transformers-based metrics are not loaded in lapp processes"


class _FlagsFinder(importlib.abc.MetaPathFinder):
    """Finds torchmetrics' flags module as usual and marks transformers absent once it ran."""

    def find_spec(self, fullname: str, path: Any, target: Any = None):
        if fullname != TORCHMETRICS_FLAGS:
            return None
        sys.meta_path.remove(self)  # once; and so that the lookup below finds the real module
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_mark(module: Any) -> None:
            exec_module(module)
            _mark_absent(module)

        spec.loader.exec_module = exec_and_mark
        return spec


def skip_torchmetrics_model_metrics() -> None:
    """Make torchmetrics, when it is imported later in this process, skip transformers."""
    if TORCHMETRICS_FLAGS in sys.modules:
        _mark_absent(sys.modules[TORCHMETRICS_FLAGS])  # too late for what it imported already
        return
    if not any(isinstance(f, _FlagsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _FlagsFinder())
