"""The one seam to Hydra's private internals.

Every use of a private Hydra member lives here, under a public name, so that an upgrade that
removes or changes one breaks this module (and ``tests/config/test_compat.py``) rather than
the code that relies on it. The pin in ``pyproject.toml`` names the series tested.

Hydra is imported inside the functions: ``lapp --help`` does not pay for it.
"""

from __future__ import annotations

from typing import Any


def stored_group(config_store: Any, *path: str) -> dict[str, Any]:
    """The ConfigStore's entries under a group path (``ConfigStore.repo``), editable in place.

    Args:
        config_store: ``ConfigStore.instance()``.
        path: group names, e.g. ``("hydra", "launcher")``; entries are keyed ``"<name>.yaml"``.

    Returns:
        The stored dict (deleting a key removes the entry), or an empty dict when absent.
    """
    node: Any = config_store.repo
    for name in path:
        node = node.get(name)
        if node is None:
            return {}
    return node


def override_value_text(value: Any) -> str:
    """A Python value as Hydra override text (``Override._get_value_element_as_str``).

    Strings are quoted where the override grammar needs it; lists and dicts nest.
    """
    from hydra.core.override_parser.types import Override

    return Override._get_value_element_as_str(value)


def job_return_value(ret: Any) -> Any:
    """What a launched job returned, or the exception it raised, without re-raising it.

    ``JobReturn.return_value`` raises the job's exception for a failed job; the stored value
    (``_return_value``) is read instead.
    """
    return ret._return_value
