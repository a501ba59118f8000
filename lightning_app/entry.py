"""Shared plumbing of the Hydra entry points: clean user errors, and `resume=RUN_DIR`.

Import cost: standard library, hydra and omegaconf only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning_app.errors import ConfigError, LappError, RunDirError
from lightning_app.runs import RunDir

ORT_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _verbose() -> bool:
    """``hydra.verbose`` (``-v`` sets it): true or a list of logger names."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and bool(HydraConfig.get().verbose)


def run_task(fn: Callable[[Any], Any], cfg: Any) -> Any:
    """Run a task; a user error prints one clear message and exits non-zero (no traceback).

    Under multirun the error propagates instead, so the sweeper can record the failed job;
    ``HYDRA_FULL_ERROR=1`` also keeps the traceback. Other packages' INFO lines and
    deprecation warnings stay off the terminal unless ``hydra.verbose`` is set.
    """
    if not _verbose():
        from lightning_app.terminal import quiet_terminal

        quiet_terminal()
    try:
        check_interpolations(cfg)
        return fn(cfg)
    except Exception as err:
        # Lightning reports bad Trainer settings as MisconfigurationException: a user error too.
        user_error = isinstance(err, LappError) or type(err).__name__ == "MisconfigurationException"
        if not user_error or os.environ.get("HYDRA_FULL_ERROR") == "1" or _in_multirun():
            raise
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))


def check_interpolations(cfg: Any) -> None:
    """Resolve every ``${...}`` once, so a broken one is a ConfigError naming its key.

    OmegaConf resolves lazily: without this, an unset environment variable, a misspelt
    reference or a self-reference fails wherever the value is first read, as a traceback.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or ""
        raw: Any = OmegaConf.to_container(cfg, resolve=False)
        for part in key.split(".") if key else []:
            raw = raw.get(part) if isinstance(raw, dict) else None
        reason = str(getattr(err, "msg", None) or err).splitlines()[0]
        raise ConfigError(
            f"{key or 'config'}={raw}: cannot resolve the interpolation: {reason}. Refer to an "
            "existing key (e.g. ${seed}) or to a set environment variable (${oc.env:NAME,default} "
            "gives a default), of the key's type, or give a plain value"
        ) from err


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

    # ONNX Runtime otherwise writes a telemetry database under ~/.cache/Microsoft when it is
    # imported; set before any import of it (export, quantization, serving workers inherit it).
    os.environ.setdefault(ORT_TELEMETRY_ENV, "1")

    register_configs()
    if argv_hook is not None:
        try:
            sys.argv = [sys.argv[0], *argv_hook(sys.argv[1:])]
        except LappError as err:
            print(f"Error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)
    task_main()
