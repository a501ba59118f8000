"""The one seam to Hydra's private internals.

Every use of a private Hydra member lives here, under a public name, so that an upgrade that
removes or changes one breaks this module (and the tests ``tests/config/test_compat.py`` and
``tests/config/test_config_compat.py``) rather than the code that relies on it. The pin in
``pyproject.toml`` names the series tested.

Lazy schemas: Hydra's ``ConfigStore.store`` turns each dataclass into an OmegaConf structured
config at once. We register a schema for every option of every group (44 of them), yet one
composition reads a handful, and building the rest cost more than half of
``lapp train --cfg job``. A lazy entry builds its schema the first time Hydra loads it.
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigNode, ConfigStore
from omegaconf import OmegaConf


class LazyConfigNode(ConfigNode):
    """A ConfigStore entry whose structured config is built on first use, then reused.

    ``ConfigStore.load`` shallow-copies the entry and assigns a deep copy to ``node``; the copy
    keeps that assignment for itself, while the built schema stays shared with the stored entry.
    """

    def __init__(self, name: str, schema: type, group: str | None) -> None:
        # ConfigNode's dataclass fields, set by hand: `node` is the property below.
        self.name, self.group, self.package, self.provider = name, group, None, "lightning_app"
        self._schema = schema
        self._built: list[Any] = []  # shared by copies: the schema is built once per process

    @property
    def node(self) -> Any:  # type: ignore[override]
        if "_own" in self.__dict__:
            return self.__dict__["_own"]
        if not self._built:
            self._built.append(OmegaConf.structured(self._schema))
        return self._built[0]

    @node.setter
    def node(self, value: Any) -> None:
        self.__dict__["_own"] = value


def store_lazily(cs: ConfigStore, name: str, schema: type, group: str | None = None) -> None:
    """``cs.store(name=..., node=schema, group=...)``, deferring the schema's construction."""
    cur = cs.repo
    for part in group.split("/") if group else ():
        cur = cur.setdefault(part, {})
    file_name = name if name.endswith(".yaml") else f"{name}.yaml"
    cur[file_name] = LazyConfigNode(file_name, schema, group)


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
