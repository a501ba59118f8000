"""The Hydra Sweeper: a thin shell around ``lightning_app.sweep.runner.SweepRunner``.

Hydra imports this module whenever it starts (plugin discovery), so Optuna, torch and the sweep
logic are imported inside ``sweep``, not here.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class LappOptunaSweeper(Sweeper):
    """Optuna sweeper: ask trials, launch them through Hydra's launcher, tell the results.

    Every constructor argument is a key of ``hydra.sweeper`` (see ``config.py``).
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = OmegaConf.create(
            {
                k: OmegaConf.to_container(v, enum_to_str=True) if OmegaConf.is_config(v) else v
                for k, v in settings.items()
            }
        )
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> Any:
        """Run the sweep; a user error prints one message and exits non-zero (no traceback)."""
        from lightning_app.errors import LappError

        try:
            from lightning_app.sweep.runner import SweepRunner

            runner = SweepRunner(
                settings=self.settings,
                config=self.config,
                launcher=self.launcher,
                config_loader=self.hydra_context.config_loader,
            )
            return runner.run(arguments)
        except LappError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"Error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)
