"""Optuna glue behind the ``lapp_optuna`` Hydra sweeper (``lapp train -m hparams_search=NAME``).

- ``grammar``, ``space``: override grammar -> Optuna distributions -> per-trial overrides
- ``settings``: every ``hydra.sweeper`` setting checked at once
- ``factories``: samplers and pruners from config
- ``objectives``: objectives, constraints, job outcomes, Pareto fronts
- ``storage``: storage URLs, creating/resuming a study safely with several processes
- ``leases``: liveness of running trials; recovery of a killed sweep's trials
- ``runner``: the ask -> launch -> tell loop; ``trial_overrides``: each trial's job overrides;
  ``compose_check``: which trial of a failed launch did not compose
- ``reporter``: the job side, a Lightning callback reporting each epoch (pruning)
- ``progress``, ``results``, ``experiment``, ``plots``: what the sweep prints and writes
"""
