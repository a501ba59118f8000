"""Validated settings of one model server, and their hand-over to worker processes.

The `serve` config group (:class:`lightning_app.config.schemas.ServerConf`) is checked here once,
every problem listed in one :class:`ConfigError`; worker processes receive the result through
an environment variable, so each worker builds the same app without recomposing the config.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from lightning_app.config.schemas import ServerConf
from lightning_app.errors import ConfigError

log = logging.getLogger("lightning_app.serve")
ENV_SETTINGS = "LAPP_SERVE_SETTINGS"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess directory
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def server_problems(conf: Any) -> list[str]:
    """Every out-of-range value of a ``serve`` config node, one line each."""
    problems = []

    def need(ok: bool, key: str, value: Any, allowed: str) -> None:
        if not ok:
            problems.append(f"serve.{key}={value!r}: {allowed}")

    need(bool(conf.host), "host", conf.host, "give an address to bind, e.g. 127.0.0.1")
    need(0 <= conf.port <= 65535, "port", conf.port, "allowed 0-65535 (0 picks a free port)")
    need(conf.workers >= 1, "workers", conf.workers, "must be >= 1")
    need(
        conf.intra_op_threads >= 0,
        "intra_op_threads",
        conf.intra_op_threads,
        "must be >= 0 (0 = all cores)",
    )
    b, lim = conf.batching, conf.limits
    need(b.max_batch_size >= 1, "batching.max_batch_size", b.max_batch_size, "must be >= 1")
    need(0 <= b.max_wait_ms <= 1000, "batching.max_wait_ms", b.max_wait_ms, "allowed 0-1000")
    need(
        b.max_queue >= b.max_batch_size,
        "batching.max_queue",
        b.max_queue,
        "must be >= batching.max_batch_size",
    )
    need(b.inline_call_ms >= 0, "batching.inline_call_ms", b.inline_call_ms, "must be >= 0")
    need(lim.max_body_bytes >= 1024, "limits.max_body_bytes", lim.max_body_bytes, "must be >= 1024")
    need(lim.max_instances >= 1, "limits.max_instances", lim.max_instances, "must be >= 1")
    need(
        lim.request_timeout_s > 0, "limits.request_timeout_s", lim.request_timeout_s, "must be > 0"
    )
    need(conf.top_k >= 1, "top_k", conf.top_k, "must be >= 1")
    need(
        conf.graceful_shutdown_s >= 0,
        "graceful_shutdown_s",
        conf.graceful_shutdown_s,
        "must be >= 0",
    )
    need(
        bool(conf.auth.api_key_env),
        "auth.api_key_env",
        conf.auth.api_key_env,
        "name an environment variable",
    )
    if conf.auth.api_key is not None:
        need(len(conf.auth.api_key) >= 8, "auth.api_key", "***", "use at least 8 characters")
    return problems


def resolve_api_key(conf: Any) -> str | None:
    """The key from ``serve.auth.api_key`` or else its environment variable; None = no auth."""
    if conf.auth.api_key is not None:
        return conf.auth.api_key
    value = os.environ.get(conf.auth.api_key_env)
    if value is None:
        return None
    if len(value) < 8:
        raise ConfigError(
            f"environment variable {conf.auth.api_key_env} holds a key of {len(value)} characters; use at least 8 (or unset it for no key)"
        )
    return value


@dataclass
class ServeSettings:
    """What a worker needs to build the app.

    Attributes:
        artifact: path of the ``.onnx`` file.
        serve: the validated ``serve`` config as its schema dataclass (plain attributes: the
            request path reads them, and DictConfig lookups cost microseconds each).
        api_key: required key, or None for an open service.
        share_dir: ``prometheus_client``'s multiprocess directory (several workers).
        parent_pid: the supervisor's pid; a worker whose parent changes shuts itself down.
    """

    artifact: str
    serve: ServerConf
    api_key: str | None = None
    share_dir: str | None = None
    parent_pid: int | None = None

    @classmethod
    def from_config(cls, serve_conf: Any, artifact: str) -> ServeSettings:
        """Validate the ``serve`` node and resolve the API key.

        Raises:
            ConfigError: listing every problem.
        """
        problems = server_problems(serve_conf)
        if problems:
            raise ConfigError(problems)
        plain = OmegaConf.to_container(serve_conf, resolve=True, enum_to_str=True)
        api_key = resolve_api_key(serve_conf)
        if serve_conf.host not in LOOPBACK and api_key is None:
            log.warning(
                "serving on %s without an API key: anyone who reaches this address can call the model",
                serve_conf.host,
            )
        return cls(artifact=str(artifact), serve=_server_conf(plain), api_key=api_key)

    def to_env(self) -> str:
        """JSON for :data:`ENV_SETTINGS`."""
        return json.dumps(
            {
                "artifact": self.artifact,
                "serve": OmegaConf.to_container(OmegaConf.structured(self.serve), enum_to_str=True),
                "api_key": self.api_key,
                "share_dir": self.share_dir,
                "parent_pid": self.parent_pid,
            }
        )

    @classmethod
    def from_env(cls) -> ServeSettings:
        """The settings a supervisor left in :data:`ENV_SETTINGS`."""
        raw = os.environ.get(ENV_SETTINGS)
        if not raw:
            raise ConfigError(f"{ENV_SETTINGS} is not set: start workers with `lapp serve`")
        data = json.loads(raw)
        data["serve"] = _server_conf(data["serve"])
        return cls(**data)


def _server_conf(plain: dict[str, Any]) -> ServerConf:
    """A plain ``serve`` mapping as the typed :class:`ServerConf` dataclass (validated by OmegaConf)."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ServerConf), plain))
