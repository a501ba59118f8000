"""Cross-field rules of the config, one module per area.

Each rule function returns a list of problems (``list[str]``); :mod:`lightning_app.config.validate`
runs the areas and raises one ConfigError listing every problem.

- :mod:`.data`: the ``data``, ``preprocessing`` and ``augmentation`` groups (and the DataSpec);
- :mod:`.model`: the ``model`` group and the monitored metric;
- :mod:`.training`: ``trainer``, ``scheduler``, steps per execution and the process layout;
- :mod:`.compression`: the ``compression`` and ``deployment`` groups.
"""

from __future__ import annotations


def check(problems: list[str], ok: bool, message: str) -> None:
    """Add ``message`` to ``problems`` unless ``ok``."""
    if not ok:
        problems.append(message)
