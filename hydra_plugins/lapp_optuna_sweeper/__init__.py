"""lightning_app's Optuna sweeper for Hydra multirun: ``hydra/sweeper=lapp_optuna``.

Discovered by Hydra through the ``hydra_plugins`` namespace package. Hydra imports every module
here at startup, so they import nothing heavy: Optuna and the sweep logic
(``lightning_app.sweep``) load only when a sweep starts.
"""

__version__ = "0.1.0"
