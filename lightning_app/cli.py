"""`lapp <stage> [hydra overrides]`: dispatch to the stage's Hydra app.

Only the chosen stage's module is imported, and each imports torch/Lightning inside its task
function, so `lapp train --help` and `lapp train --cfg job` answer fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

STAGES: dict[str, tuple[str, str]] = {
    "train": ("lightning_app.recipes.train", "fit and test a model from composed configs"),
    "eval": (
        "lightning_app.recipes.evaluate",
        "recompute a run's test metrics from its checkpoint",
    ),
    "export": (
        "lightning_app.recipes.export",
        "rerun compression and ONNX export on a trained run",
    ),
    "serve": ("lightning_app.recipes.serve", "HTTP service over an exported ONNX model"),
    "predict": (
        "lightning_app.recipes.predict",
        "predict a CSV/Parquet/JSONL/NPZ file with an exported model",
    ),
}

USAGE = (
    "usage: lapp <stage> [overrides...] [--help | --cfg job | -m | -v]\n\n"
    "  -v, --verbose  also show other packages' INFO lines and deprecation warnings, and our\n"
    "                 DEBUG lines (the same as hydra.verbose=lightning_app)\n\nstages:\n"
    + "\n".join(f"  {name:<8} {desc}" for name, (_, desc) in STAGES.items())
)
VERBOSE_FLAGS = ("-v", "--verbose")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        sys.exit(0 if argv else 2)
    stage, rest = argv[0], argv[1:]
    if any(a in VERBOSE_FLAGS for a in rest):
        rest = [a for a in rest if a not in VERBOSE_FLAGS] + ["hydra.verbose=lightning_app"]
    if stage not in STAGES:
        print(
            f"Error: unknown stage {stage!r}; allowed: {', '.join(STAGES)}\n\n{USAGE}",
            file=sys.stderr,
        )
        sys.exit(2)
    if any(a in ("-h", "--help") for a in rest) and not any(
        a.startswith(("--config-dir", "-cd")) for a in rest
    ):
        from lightning_app.help import stage_help

        module_name, description = STAGES[stage]
        overrides = [a for a in rest if a not in ("-h", "--help")]
        config_name = module_name.rsplit(".", 1)[1].replace("evaluate", "eval")
        try:
            print(stage_help(stage, description, config_name, overrides))
        except Exception as err:
            print(f"Error: {err}", file=sys.stderr)
            sys.exit(2)
        sys.exit(0)
    module = importlib.import_module(STAGES[stage][0])
    sys.argv = [f"lapp-{stage}", *rest]
    try:
        module.main()
    except KeyboardInterrupt:  # Ctrl-C: the stage has cleaned up on the way out; no traceback
        print(f"lapp {stage}: interrupted", file=sys.stderr)
        sys.exit(130)


# Stages that finish: their process ends right after the stage, without tearing the interpreter
# down (a second or more after a training run, spent freeing what the OS frees anyway).
FINISHING_STAGES = ("train", "eval", "export", "predict")


def run() -> NoReturn:
    """The `lapp` console script: :func:`main`, then the process exits."""
    from lightning_app.training.lean_imports import lean_lightning_imports

    lean_lightning_imports()
    try:
        main()
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:  # sys.exit("message"): printed, exit status 1
            print(stop.code, file=sys.stderr)
            code = 1
    if len(sys.argv) > 0 and _stage_of(sys.argv) in FINISHING_STAGES:
        exit_now(code)
    sys.exit(code)


def _stage_of(argv: list[str]) -> str:
    # `main` rewrote sys.argv to `lapp-<stage> ...` when it ran a stage.
    name = argv[0].rsplit("/", 1)[-1]
    return name[len("lapp-") :] if name.startswith("lapp-") else ""


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` as a normal exit would, minus the interpreter's teardown.

    The same steps as the interpreter's exit, in its order: wait for the non-daemon threads and
    run the thread-exit hooks (``concurrent.futures`` and joblib's loky executors stop their
    workers there), then the exit handlers (log files flushed and closed, temporary directories
    removed, child processes joined), then flush the standard streams. ``os._exit`` then skips
    freeing every module and object one by one, and the libraries' static destructors.
    """
    import atexit
    import contextlib
    import os
    import threading

    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed or broken stream
                stream.flush()
        os._exit(code)


if __name__ == "__main__":
    run()
