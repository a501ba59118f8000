"""A child rank of a DDP/FSDP job: ``python -m lightning_app.distributed.child CONFIG_FILE``.

Started by ``processes.ChildRankLauncher`` with Lightning's rank variables in the environment
(``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...). It runs ``lapp train``'s task on the
job's resolved config, without Hydra: no run directory of its own, nothing written.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(
            f"usage: python -m {__spec__.name} CONFIG_FILE (started by lapp train)", file=sys.stderr
        )
        sys.exit(2)
    from omegaconf import OmegaConf

    from lightning_app.training.lean_imports import lean_lightning_imports

    lean_lightning_imports()  # as the `lapp` process that started this rank
    from lightning_app.entry import run_task
    from lightning_app.recipes.train import train

    try:
        run_task(train, OmegaConf.load(argv[0]))
    except Exception as err:
        if type(err).__name__ == "TrialPruned":  # every rank stops together; rank 0 reports it
            sys.exit(0)
        raise


if __name__ == "__main__":
    main()
