"""Where a pretrained backbone lives: a directory, a hub id in the local cache, or a `lapp` run.

``model.pretrained`` (and the tokenizer's ``pretrained``, which follows it) names one of:

- a directory in the Hugging Face layout (``config.json``, ``model.safetensors``, tokenizer or
  processor files);
- a hub id (``org/name``), found in the local Hugging Face cache (``HF_HUB_CACHE``, else
  ``HF_HOME/hub``); fetched only when ``model.download=true`` and ``HF_HUB_OFFLINE`` is unset;
- an earlier `lapp train` run directory: its fine-tuned backbone (``backbone/``, written at
  the end of the run, adapters merged), to which the new run adds a new head.

Import cost: the standard library only (``huggingface_hub`` is imported to look up a hub id).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from lightning_app.errors import ConfigError
from lightning_app.runs import CONFIG_FILE, RunDir

CONFIG_JSON = "config.json"
BACKBONE_DIR = "backbone"  # inside a run directory: the fine-tuned backbone, hub layout
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TRUE = ("1", "true", "yes", "on")


def hub_cache() -> Path:
    """The Hugging Face hub cache this process reads (``HF_HUB_CACHE``, ``HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def is_run_dir(path: Path) -> bool:
    run = RunDir(path)
    return (path / CONFIG_FILE).is_file() or run.checkpoints.is_dir()


def resolve_pretrained(name: str, download: bool = False, key: str = "model.pretrained") -> Path:
    """The local directory (hub layout, with ``config.json``) that ``name`` stands for.

    Raises:
        ConfigError: naming the directory or hub id, the cache it looked in and what to do.
    """
    if not name or not str(name).strip():
        raise ConfigError(f"{key} is empty: give a model directory, a hub id or a run directory")
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return _local(path, name, key)
    if not _HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise ConfigError(f"{key}={name}: directory not found ({path.resolve()})")
    return _local(_from_hub(name, download, key), name, key)


def _local(path: Path, name: str, key: str) -> Path:
    if (path / CONFIG_JSON).is_file():
        return path
    if is_run_dir(path):
        backbone = path / BACKBONE_DIR
        if (backbone / CONFIG_JSON).is_file():
            return backbone
        raise ConfigError(
            f"{key}={name} is a `lapp train` run directory without {BACKBONE_DIR}/{CONFIG_JSON}: "
            "only runs of model=pretrained that finished training write their backbone there"
        )
    held = sorted(p.name for p in path.iterdir())[:8]
    raise ConfigError(
        f"{key}={name}: {path} has no {CONFIG_JSON}, so it is not a model in the Hugging Face "
        f"layout (config.json, model.safetensors, tokenizer or processor files); it holds {held}"
    )


def _from_hub(repo_id: str, download: bool, key: str) -> Path:
    cache = hub_cache()
    if download and offline():
        raise ConfigError(
            f"{key}={repo_id} with model.download=true, but HF_HUB_OFFLINE is set: unset it to "
            f"download, or put the model in the cache ({cache})"
        )
    try:
        from huggingface_hub import snapshot_download

        found = snapshot_download(
            repo_id=repo_id, cache_dir=str(cache), local_files_only=not download
        )
    except Exception as err:  # the hub client raises many types (offline, not found, ...)
        how = (
            "model.download=true could not fetch it"
            if download
            else "set model.download=true to fetch it"
        )
        raise ConfigError(
            f"{key}={repo_id}: no such directory, and the hub model {repo_id!r} is not in the "
            f"local Hugging Face cache {cache} ({type(err).__name__}); {how}, or give a local "
            "directory"
        ) from None
    return Path(found)


def read_config(directory: Path, key: str = "model.pretrained") -> dict[str, Any]:
    """``config.json`` as a dict (with ``model_type``), or a ConfigError naming the file."""
    path = Path(directory) / CONFIG_JSON
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{key}: cannot read {path}: {err}") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ConfigError(f"{key}: {path} has no model_type; it is not a transformers config")
    return config
