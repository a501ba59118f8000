"""Hydra internals the config package relies on, in one place (see the test beside it).

Hydra's ``ConfigStore.store`` turns each dataclass into an OmegaConf structured config at once.
We register a schema for every option of every group (44 of them), yet one composition reads a
handful, and building the rest cost more than half of ``lapp train --cfg job``. A lazy entry
builds its schema the first time Hydra loads it.
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
