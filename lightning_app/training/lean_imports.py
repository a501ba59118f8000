"""Keep optional integrations that `lapp` never uses from loading with Lightning.

``import pytorch_lightning`` imports torchmetrics, and torchmetrics imports at once what it
finds installed: transformers (for its BERTScore, InfoLM and CLIP metrics), about half a second
on every run, pretrained or not; and matplotlib (for ``Metric.plot``), about 0.15 s. `lapp`
computes none of those metrics and plots none (its metrics are named in
``lightning_app.metrics``; its own plots import matplotlib themselves), so its own processes
tell torchmetrics that both are absent. Runs that fine-tune a pretrained model import
transformers themselves, as before.

torchmetrics also imports ``scipy.signal`` when it starts, only to give it back a ``hamming``
alias that scipy removed (for SRMRpy, which its SRMR metric uses): with what that pulls in,
0.7-0.8 s of the 2.7 s that ``import pytorch_lightning`` takes on this project's machine. In
`lapp` processes ``scipy.signal`` is deferred: a stand-in module with that alias takes its
place, and the first use of anything else in it (an attribute, ``from scipy.signal import``,
a submodule) imports the real module, which replaces the stand-in and gets the alias.

Only the `lapp` console script calls :func:`lean_lightning_imports`; importing
``lightning_app`` as a library changes nothing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
from typing import Any

TORCHMETRICS_FLAGS = "torchmetrics.utilities.imports"
# torchmetrics' availability flags (RequirementCache objects, checked lazily) of what `lapp`
# never asks of it: transformers-based metrics and metric plots.
UNUSED_FLAGS = (
    "_TRANSFORMERS_AVAILABLE",
    "_TRANSFORMERS_GREATER_EQUAL_4_4",
    "_TRANSFORMERS_GREATER_EQUAL_4_10",
    "_MATPLOTLIB_AVAILABLE",
)


def _mark_absent(module: Any) -> None:
    for name in UNUSED_FLAGS:
        flag = getattr(module, name, None)
        if flag is not None:
            flag.available = False  # RequirementCache checks only when this is unset
            flag.message = f"{name} is marked absent in lapp processes (lean_imports)"


class _FlagsFinder(importlib.abc.MetaPathFinder):
    """Finds torchmetrics' flags module as usual and marks the unused ones absent once it ran."""

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


SIGNAL = "scipy.signal"
# the special names that need the real module: a submodule's import, ``import *``
LOADING_DUNDERS = ("__path__", "__all__")


class DeferredSignal(types.ModuleType):
    """``scipy.signal`` until something reads more of it than torchmetrics' start-up check."""

    def __init__(self) -> None:
        super().__init__(SIGNAL, "scipy.signal, imported on first use (lean_imports)")
        self.hamming = _hamming  # torchmetrics adds this alias when it is missing

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name not in LOADING_DUNDERS:
            # probes such as inspect.getmodule's ``hasattr(module, "__file__")`` over every
            # module in sys.modules: a stand-in has no file
            raise AttributeError(name)
        return getattr(real_signal(), name)


def _hamming(*args: Any, **kwargs: Any) -> Any:
    return real_signal().windows.hamming(*args, **kwargs)


def real_signal() -> types.ModuleType:
    """The real ``scipy.signal``, imported now if it was deferred, with torchmetrics' alias."""
    if isinstance(sys.modules.get(SIGNAL), DeferredSignal):
        del sys.modules[SIGNAL]
    real = importlib.import_module(SIGNAL)
    if not hasattr(real, "hamming"):
        real.hamming = real.windows.hamming
    return real


def defer_scipy_signal() -> None:
    """Put the stand-in in ``scipy.signal``'s place, unless it is imported already or absent."""
    if SIGNAL not in sys.modules and importlib.util.find_spec("scipy") is not None:
        sys.modules[SIGNAL] = DeferredSignal()


def skip_torchmetrics_model_metrics() -> None:
    """Make torchmetrics, when it is imported later in this process, skip transformers and
    matplotlib."""
    if TORCHMETRICS_FLAGS in sys.modules:
        _mark_absent(sys.modules[TORCHMETRICS_FLAGS])  # too late for what it imported already
        return
    if not any(isinstance(f, _FlagsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _FlagsFinder())


def lean_lightning_imports() -> None:
    """What `lapp` processes do before importing Lightning (see the module's docstring)."""
    skip_torchmetrics_model_metrics()
    defer_scipy_signal()
