"""Shared plumbing of the Hydra entry points: clean user errors, and `resume=RUN_DIR`.

Import cost: standard library, hydra and omegaconf only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning_app.errors import LappError, RunDirError
from lightning_app.runs import RunDir


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_task(fn: Callable[[Any], Any], cfg: Any) -> Any:
    """Run a task; a user error prints one clear message and exits non-zero (no traceback).

    Under multirun the error propagates instead, so the sweeper can record the failed job;
    ``HYDRA_FULL_ERROR=1`` also keeps the traceback.
    """
    try:
        return fn(cfg)
    except Exception as err:
        # Lightning reports bad Trainer settings as MisconfigurationException: a user error too.
        user_error = isinstance(err, LappError) or type(err).__name__ == "MisconfigurationException"
        if not user_error or os.environ.get("HYDRA_FULL_ERROR") == "1" or _in_multirun():
            raise
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))


def resume_argv(argv: list[str]) -> list[str]:
    """Expand ``resume=RUN_DIR`` into that run's own overrides and run directory.

    A killed run then continues with one override: the composition is the original one, and
    the run writes into its original directory.
    """
    value = next((a.split("=", 1)[1] for a in argv if a.startswith("resume=")), None)
    if not value or value == "null":
        return argv
    run_dir = Path(value).expanduser().resolve()
    overrides_file = RunDir(run_dir).overrides
    if not overrides_file.is_file():
        raise RunDirError(
            f"resume={value}: {overrides_file} not found; pass a run directory written by `lapp train`"
        )
    from omegaconf import OmegaConf

    original = [
        o
        for o in OmegaConf.to_container(OmegaConf.load(overrides_file))
        if not o.startswith("resume=")
    ]
    rest = [a for a in argv if not a.startswith("resume=")]
    return [*original, *rest, f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def hydra_main(
    task_main: Callable[[], Any], argv_hook: Callable[[list[str]], list[str]] | None = None
) -> None:
    """Register schemas, rewrite argv if needed, then hand over to the Hydra app."""
    from lightning_app.config.schemas import register_configs

    register_configs()
    if argv_hook is not None:
        try:
            sys.argv = [sys.argv[0], *argv_hook(sys.argv[1:])]
        except LappError as err:
            print(f"Error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)
    task_main()
