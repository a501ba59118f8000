"""PNG plots of a study (Optuna's matplotlib backend), written atomically to the sweep directory.

A plot that cannot be drawn yet (e.g. importances from a single complete trial) is skipped with
a log line; it never fails the sweep.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning_app.runs import atomic_write
from lightning_app.sweep.ranking import constraints_func

log = logging.getLogger(__name__)


def _slug(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", metric).strip("_")


def _save(path: Path, draw: Callable[[], Any]) -> bool:
    import matplotlib.pyplot as plt
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            drawn = draw()
    except Exception as err:  # a plot is optional: say why it is missing
        log.info("plot %s skipped: %s", path.name, err)
        plt.close("all")
        return False
    axes = np.ravel(drawn) if isinstance(drawn, np.ndarray) else [drawn]
    fig = axes[0].figure
    fig.set_size_inches(max(fig.get_size_inches()[0], 8), max(fig.get_size_inches()[1], 5))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    return True


def write_plots(study: Any, ctx: Any) -> list[Path]:
    """Optimization history, parameter importances, intermediate values, Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    out, d = [], ctx.sweep_dir
    names = ["value" if o.metric == "return" else o.metric for o in ctx.objectives]
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        log.info("plots skipped: no complete trial yet")
        return out
    plots: dict[str, Callable[[], Any]] = {}
    if len(names) == 1:
        plots["optimization_history.png"] = lambda: ovm.plot_optimization_history(
            study, target_name=names[0]
        )
        plots["param_importances.png"] = lambda: ovm.plot_param_importances(
            study, target_name=names[0]
        )
    else:
        for i, name in enumerate(names):
            plots[f"optimization_history_{_slug(name)}.png"] = lambda i=i, name=name: (
                ovm.plot_optimization_history(study, target=lambda t: t.values[i], target_name=name)
            )
            plots[f"param_importances_{_slug(name)}.png"] = lambda i=i, name=name: (
                ovm.plot_param_importances(study, target=lambda t: t.values[i], target_name=name)
            )
        if len(names) in (2, 3):
            plots["pareto_front.png"] = lambda: ovm.plot_pareto_front(
                study,
                target_names=names,
                constraints_func=constraints_func if ctx.constraints else None,
            )
    if any(t.intermediate_values for t in trials):
        plots["intermediate_values.png"] = lambda: ovm.plot_intermediate_values(study)
    for filename, draw in plots.items():
        if _save(d / filename, draw):
            out.append(d / filename)
    return out
