"""A trial's job: its sampled overrides plus what ties the job to the trial.

Besides the sampled parameters every job gets ``hydra.sweep.subdir=trial_<number>`` (run
directories named by trial, unique across reruns and workers), ``sweep_trial={...}`` when the
task reports per-epoch values (``lapp train``), and ``threads=N`` when trials run in parallel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning_app.sweep.compat import set_system_attr, trial_id
from lightning_app.sweep.factories import PRUNER_ATTR
from lightning_app.sweep.grammar import override_text
from lightning_app.sweep.storage import job_url


def job_overrides(
    trial: Any, plan: Any, url: str, metric: str | None, config: Any, settings: Any
) -> list[str]:
    """Sample the trial and return its job's override list; records them on the trial.

    Args:
        trial: the asked Optuna trial.
        plan: the sweep's ``Plan`` (search space, pruner).
        url: the study's storage URL.
        metric: the per-epoch metric the job reports (``auto``: its monitor), or None.
        config: the sweep's composed config.
        settings: the ``hydra.sweeper`` node.
    """
    overrides = plan.space.sample(trial)
    study = trial.study
    set_system_attr(study, trial_id(trial), PRUNER_ATTR, plan.pruner)
    extra = [f"hydra.sweep.subdir=trial_{trial.number}"]
    if "sweep_trial" in config:
        link = {
            "storage": job_url(url),
            "study_name": study.study_name,
            "trial_id": trial_id(trial),
            "number": trial.number,
            "metric": metric,
        }
        extra.append(f"sweep_trial={override_text(link)}")
    threads = threads_per_job(plan.space, config, settings)
    if threads:
        extra.append(f"threads={threads}")
    trial.set_user_attr("overrides", overrides)
    trial.set_user_attr(
        "run_dir", str(Path(config.hydra.sweep.dir).resolve() / f"trial_{trial.number}")
    )
    return overrides + extra


def threads_per_job(space: Any, config: Any, settings: Any) -> int | None:
    """torch threads per job when trials run in parallel, unless the user set ``threads``."""
    parallel = "BasicLauncher" not in str(config.hydra.launcher.get("_target_", ""))
    if settings.n_jobs < 2 or not parallel or "threads" not in config or config.threads is not None:
        return None
    if "threads" in space.params or "threads" in space.fixed:
        return None
    return settings.threads_per_job or max(1, cores() // settings.n_jobs)


def cores() -> int:
    """CPU cores this process may use (affinity-aware, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
