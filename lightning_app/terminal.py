"""What a run prints: our own lines, and warnings or errors from anyone.

Libraries log INFO lines a user can do nothing about (Lightning's "GPU available: False",
its tips, the ONNX passes' "No unused functions to remove") and raise deprecation warnings
about their own internals. By default the terminal drops them; the run's log file keeps every
record. `lapp <stage> -v` (or Hydra's ``hydra.verbose``) shows them all again.
"""

from __future__ import annotations

import logging
import warnings

# Loggers whose INFO lines the terminal shows (a logger's name is its module's): ours, Hydra's
# and its launchers' (a multirun's "Launching 4 jobs locally", "#0 : optimizer=sgd"), and the
# profiler's report, which `debug=profiler` asks for.
OWN_LOGGERS = (
    "lightning_app",
    "hydra",
    "hydra_plugins",
    "__main__",
    "pytorch_lightning.profilers",
    "lightning.pytorch.profilers",
)
# Warnings of these kinds from other packages speak of their internals, not of the user's run.
LIBRARY_CATEGORIES = (DeprecationWarning, FutureWarning)
_NOT_OURS = r"(?!(lightning_app|hydra_plugins\.lapp_optuna_sweeper)(\.|$))"


def is_own(name: str) -> bool:
    """Whether the terminal shows logger ``name``'s INFO lines."""
    return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


class OwnOrWarning(logging.Filter):
    """Pass our own records at every level, and other loggers' warnings and errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or is_own(record.name)


def quiet_terminal() -> None:
    """Drop other packages' INFO records from the terminal and their deprecation warnings.

    Applies to the root logger's terminal handlers (Hydra configures them per job; the run's
    log file handler is left as is) and to Python's warning filters of this process.
    """
    for handler in logging.getLogger().handlers:
        on_terminal = type(handler) is logging.StreamHandler
        if on_terminal and not any(isinstance(f, OwnOrWarning) for f in handler.filters):
            handler.addFilter(OwnOrWarning())
    for category in LIBRARY_CATEGORIES:
        warnings.filterwarnings("ignore", category=category, module=_NOT_OURS)
