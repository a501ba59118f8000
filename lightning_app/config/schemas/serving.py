"""Schemas of `lapp serve` and `lapp predict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from lightning_app.config.schemas.training import PathsConf


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


@dataclass
class BatchingConf:
    enabled: bool = True  # false: every request is its own model call
    max_batch_size: int = 64  # instances per model call
    max_wait_ms: float = 2.0  # how long the first queued request waits for others
    max_queue: int = 2048  # instances waiting beyond this get 503 (backpressure)
    inline_call_ms: float = 1.0  # model calls faster than this run on the event loop, not a thread


@dataclass
class LimitsConf:
    max_body_bytes: int = 1_048_576  # larger bodies get 413
    max_instances: int = 256  # instances per request; more get 413
    request_timeout_s: float = 10.0  # queue + inference time; past it 503
    header_timeout_s: float = 10.0  # a request's headers must arrive within this; else 408, closed
    max_connections: int = 1024  # per worker: connections and requests in flight; beyond, 503


@dataclass
class AuthConf:
    api_key: str | None = (
        None  # required key (X-API-Key or Authorization: Bearer); null = env / none
    )
    api_key_env: str = "LAPP_API_KEY"  # environment variable read when api_key is null


@dataclass
class ServerConf:
    host: str = "127.0.0.1"
    port: int = 8000  # 0 picks a free port (printed at start)
    workers: int = 1  # server processes sharing the port
    intra_op_threads: int = 1  # ONNX Runtime threads per worker; 0 = all cores
    batching: BatchingConf = field(default_factory=BatchingConf)
    limits: LimitsConf = field(default_factory=LimitsConf)
    auth: AuthConf = field(default_factory=AuthConf)
    top_k: int = 3  # classes listed per prediction unless the request asks otherwise
    probabilities: bool = True  # include every class probability unless the request says no
    graceful_shutdown_s: float = 10.0  # SIGTERM/SIGINT: time given to in-flight requests
    log_level: LogLevel = LogLevel.info
    access_log: bool = False
    docs: bool = True  # OpenAPI docs at /docs and /openapi.json


@dataclass
class ServeConf:
    task_name: str = "serve"
    run_dir: str | None = None  # a directory written by `lapp train` with deployment
    artifact: str | None = None  # or an exported .onnx file
    variant: str = "fp32"  # artifact in run_dir: fp32 -> model.onnx, int8 -> model.int8.onnx
    serve: Any = MISSING
    paths: PathsConf = field(default_factory=PathsConf)


@dataclass
class PredictConf:
    task_name: str = "predict"
    run_dir: str | None = None
    artifact: str | None = None
    variant: str = "fp32"
    input: str | None = None  # .csv, .parquet, .jsonl or .npz
    output: str | None = None  # .csv, .parquet, .jsonl or .npz
    batch_size: int = 256  # rows per model call
    threads: int = 0  # ONNX Runtime intra-op threads; 0 = all cores
    top_k: int = 1  # top classes listed per row (classification)
    probabilities: bool = True  # one probability column per class
    text_column: str = "text"  # column holding the text (text models)
    keep_columns: list[str] = field(default_factory=list)  # input columns copied to the output
    overwrite: bool = False  # replace an existing output file
    progress: bool = True
    paths: PathsConf = field(default_factory=PathsConf)
