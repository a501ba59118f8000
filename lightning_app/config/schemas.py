"""One dataclass schema per config-group option.

Each YAML option starts its defaults list with ``/schema/<group>/<name>@_here_``, so Hydra
checks key names, types and enum choices while composing, and a bad override fails with the
full key, the value and what is allowed. Import cost: dataclasses and omegaconf only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


class Activation(str, Enum):
    relu = "relu"
    gelu = "gelu"
    tanh = "tanh"
    silu = "silu"
    leaky_relu = "leaky_relu"


class Pool(str, Enum):
    max = "max"
    avg = "avg"
    none = "none"


class Cell(str, Enum):
    lstm = "lstm"
    gru = "gru"


class Normalize(str, Enum):
    standard = "standard"
    minmax = "minmax"
    robust = "robust"
    none = "none"


class Impute(str, Enum):
    mean = "mean"
    median = "median"
    most_frequent = "most_frequent"
    constant = "constant"
    drop_row = "drop_row"


class CategoricalImpute(str, Enum):
    most_frequent = "most_frequent"
    constant = "constant"
    drop_row = "drop_row"


class Infinity(str, Enum):
    drop_row = "drop_row"
    clip = "clip"
    missing = "missing"


class OutlierMethod(str, Enum):
    none = "none"
    std = "std"
    iqr = "iqr"


class Encoding(str, Enum):
    onehot = "onehot"
    ordinal = "ordinal"


class Imbalance(str, Enum):
    none = "none"
    class_weights = "class_weights"
    oversample = "oversample"


class UnseenLabels(str, Enum):
    error = "error"
    drop_row = "drop_row"


class TaskChoice(str, Enum):
    auto = "auto"
    classification = "classification"
    regression = "regression"


class TableFormat(str, Enum):
    auto = "auto"
    csv = "csv"
    parquet = "parquet"


class ImageMode(str, Enum):
    grayscale = "grayscale"
    rgb = "rgb"


class OnError(str, Enum):
    skip = "skip"
    fail = "fail"


class TokenLevel(str, Enum):
    word = "word"
    char = "char"


class Side(str, Enum):
    pre = "pre"
    post = "post"


class AudioFeatureKind(str, Enum):
    log_mel = "log_mel"
    mfcc = "mfcc"


class AudioLayout(str, Enum):
    image = "image"
    sequence = "sequence"


class AudioAlign(str, Enum):
    center = "center"
    start = "start"


class MnistDataset(str, Enum):
    mnist = "mnist"
    fashion_mnist = "fashion_mnist"


class InputKindChoice(str, Enum):
    auto = "auto"
    tabular = "tabular"
    image = "image"
    tokens = "tokens"
    sequence = "sequence"


class SchedulerName(str, Enum):
    none = "none"
    cosine = "cosine"
    step = "step"
    onecycle = "onecycle"
    plateau = "plateau"


class MonitorMode(str, Enum):
    auto = "auto"
    min = "min"
    max = "max"


# -- data -------------------------------------------------------------------------------------
@dataclass
class SplitConf:
    val: float = 0.15
    test: float = 0.15
    stratify: bool = True
    seed: int = 42
    column: str | None = None  # a column of train/val/test labels (table and text sources)


@dataclass
class LoaderConf:
    batch_size: int = 32
    eval_batch_size: int = 512
    shuffle: bool = True
    drop_last: bool = False


@dataclass
class DataConf:
    name: str = MISSING
    source: Any = MISSING  # a source object's config: `_target_` plus its arguments
    split: SplitConf = field(default_factory=SplitConf)
    loader: LoaderConf = field(default_factory=LoaderConf)
    data_dir: str = "${paths.data_dir}"  # where sources that download (mnist) keep their files
    download: bool = False  # fetch missing files from the usual mirrors (checksums verified)


@dataclass
class DigitsSourceConf:
    _target_: str = "lightning_app.data.sources.digits.DigitsSource"
    as_image: bool = True


@dataclass
class SyntheticSourceConf:
    _target_: str = "lightning_app.data.sources.synthetic.SyntheticSource"
    task: str = "classification"
    num_samples: int = 512
    num_features: int = 8
    num_classes: int = 3
    input_kind: str = "tabular"
    noise: float = 0.5
    seed: int = 0


@dataclass
class MnistSourceConf:
    _target_: str = "lightning_app.data.sources.mnist.MnistSource"
    dataset: MnistDataset = MnistDataset.mnist
    data_dir: str = MISSING
    download: bool = False
    as_image: bool = True  # (1, 28, 28) images, else 784 flat features
    mirrors: list[str] = field(default_factory=list)  # tried before the built-in mirrors


@dataclass
class TableSourceConf:
    _target_: str = "lightning_app.data.sources.table.TableSource"
    path: str = MISSING
    target: str = MISSING
    features: list[str] | None = None  # null: every column but the target, split and dropped ones
    categorical: list[str] | None = None  # null: detected (text columns that are not numbers)
    drop_columns: list[str] = field(default_factory=list)
    task: TaskChoice = TaskChoice.auto
    format: TableFormat = TableFormat.auto
    delimiter: str | None = None  # null: "," ("\t" for .tsv)
    encoding: str = "utf-8"
    na_values: list[str] = field(default_factory=list)  # extra strings meaning "missing"
    split_column: str | None = None


@dataclass
class ImageFolderSourceConf:
    _target_: str = "lightning_app.data.sources.image_folder.ImageFolderSource"
    root: str = MISSING
    size: list[int] = field(default_factory=lambda: [32, 32])
    mode: ImageMode = ImageMode.grayscale
    extensions: list[str] = field(
        default_factory=lambda: [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"]
    )
    on_error: OnError = OnError.skip


@dataclass
class AudioFeaturesConf:
    kind: AudioFeatureKind = AudioFeatureKind.log_mel
    n_mels: int = 40
    n_mfcc: int = 13  # kind=mfcc: cepstral coefficients kept
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None  # null: the smallest power of two holding the window
    fmin: float = 20.0
    fmax: float | None = None  # null: sample_rate / 2
    log_offset: float = 1e-6  # log(mel + log_offset)


@dataclass
class AudioFolderSourceConf:
    _target_: str = "lightning_app.audio.source.AudioFolderSource"
    root: str = MISSING
    sample_rate: int = 16000  # every recording is resampled to this rate
    duration: float = 1.0  # seconds; shorter recordings are padded, longer cropped
    align: AudioAlign = AudioAlign.center
    layout: AudioLayout = AudioLayout.image  # image (1, bands, frames) or sequence (frames, bands)
    features: AudioFeaturesConf = field(default_factory=AudioFeaturesConf)
    extensions: list[str] = field(default_factory=lambda: [".wav", ".flac", ".ogg"])
    on_error: OnError = OnError.skip


@dataclass
class TokenizerConf:
    level: TokenLevel = TokenLevel.word
    vocab_size: int = 20000
    max_len: int = 64
    min_freq: int = 1
    lowercase: bool = True
    padding: Side = Side.pre
    truncation: Side = Side.post


@dataclass
class TextTableSourceConf:
    _target_: str = "lightning_app.data.sources.text_table.TextTableSource"
    path: str = MISSING
    text_column: str = "text"
    label_column: str = "label"
    task: TaskChoice = TaskChoice.auto
    format: TableFormat = TableFormat.auto
    delimiter: str | None = None
    encoding: str = "utf-8"
    na_values: list[str] = field(default_factory=list)
    split_column: str | None = None
    tokenizer: TokenizerConf = field(default_factory=TokenizerConf)


@dataclass
class NpzSourceConf:
    _target_: str = "lightning_app.data.sources.npz.NpzSource"
    path: str = MISSING
    x_key: str = "x"
    y_key: str = "y"
    split_key: str = "split"  # optional array of train/val/test labels
    class_names_key: str = "class_names"  # optional array of class names (y holds indices)
    input_kind: InputKindChoice = InputKindChoice.auto
    task: TaskChoice = TaskChoice.auto


@dataclass
class CleaningConf:
    drop_duplicates: bool = True  # tables and text: rows equal in every feature and the target
    infinity: Infinity = Infinity.drop_row
    unseen_labels: UnseenLabels = UnseenLabels.error  # val/test labels the training split lacks


@dataclass
class OutlierConf:
    method: OutlierMethod = OutlierMethod.none
    k: float = 3.0  # std: mean +- k std; iqr: [q1 - k IQR, q3 + k IQR]


@dataclass
class PreprocessingConf:
    normalize: Normalize = Normalize.standard
    impute: Impute = Impute.mean  # numeric missing values
    fill_value: float = 0.0  # impute=constant
    categorical_impute: CategoricalImpute = CategoricalImpute.most_frequent
    categorical_fill: str = "__missing__"  # categorical_impute=constant
    encoding: Encoding = Encoding.onehot
    max_categories: int = 50  # per column; rarer categories share the unknown bucket
    min_category_count: int = 1
    imbalance: Imbalance = Imbalance.none
    cleaning: CleaningConf = field(default_factory=CleaningConf)
    outliers: OutlierConf = field(default_factory=OutlierConf)


@dataclass
class AugmentationConf:
    name: str = "none"


@dataclass
class ImageAugmentationConf:
    name: str = "image"
    shift: float = 0.1  # max translation, as a fraction of the image side
    rotation: float = 10.0  # max rotation, degrees
    scale: float = 0.1  # zoom factor drawn from [1 - scale, 1 + scale]
    noise: float = 0.0  # Gaussian noise std, as a fraction of the batch's pixel std
    hflip: bool = False  # mirror left-right (wrong for digits and text)
    vflip: bool = False
    p: float = 1.0  # share of training images augmented


@dataclass
class TabularAugmentationConf:
    name: str = "tabular"
    noise: float = 0.05  # Gaussian noise std, as a fraction of each numeric feature's batch std
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) mixing weights; 0 = no mixup
    mixup_prob: float = 0.5  # share of rows mixed with a partner


@dataclass
class TextAugmentationConf:
    name: str = "text"
    token_dropout: float = 0.1  # share of tokens replaced by the unknown token


@dataclass
class AudioAugmentationConf:
    name: str = "audio"
    p: float = 1.0  # share of training clips augmented
    shift_ms: float = 100.0  # max time shift either way
    gain_db: float = 6.0  # gain in [-gain_db, gain_db] dB
    noise_prob: float = 0.8  # share of augmented clips that get background noise
    snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])  # [low, high] dB
    noise_dir: str | None = None  # folder of noise recordings; null = white noise
    freq_masks: int = 2  # SpecAugment frequency masks per clip
    freq_mask_width: int = 8  # each 0..width bands
    time_masks: int = 2
    time_mask_width: int = 10  # each 0..width frames


# -- models -----------------------------------------------------------------------------------
@dataclass
class MLPConf:
    _target_: str = "lightning_app.models.mlp.MLP"
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 64])
    activation: Activation = Activation.relu
    dropout: float = 0.0
    batch_norm: bool = False
    embed_dim: int = 64


@dataclass
class CNNConf:
    _target_: str = "lightning_app.models.cnn.CNN"
    channels: list[int] = field(default_factory=lambda: [16, 32])
    kernel_size: int = 3
    pool: Pool = Pool.max
    activation: Activation = Activation.relu
    batch_norm: bool = True
    dropout: float = 0.0
    hidden_size: int = 64


@dataclass
class RNNConf:
    _target_: str = "lightning_app.models.rnn.RNN"
    cell: Cell = Cell.lstm
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    embed_dim: int = 64


@dataclass
class TransformerConf:
    _target_: str = "lightning_app.models.transformer.Transformer"
    width: int = 64
    heads: int = 4
    layers: int = 2
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    patch_size: int = 2


# -- optimization -----------------------------------------------------------------------------
@dataclass
class SGDConf:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    fused: bool | None = None  # one fused kernel per step (CPU and CUDA); null = torch's choice


@dataclass
class AdamConf:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    fused: bool | None = None  # one fused kernel per step (CPU and CUDA); null = torch's choice


@dataclass
class AdamWConf(AdamConf):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


@dataclass
class SchedulerConf:
    name: SchedulerName = SchedulerName.none
    warmup_epochs: float = 0.0  # linear warmup length (fractions allowed); not with plateau
    min_lr: float = 0.0  # cosine floor / plateau floor
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.1  # step and plateau: decay factor
    max_lr: float | None = None  # onecycle peak; null = the optimizer's lr
    pct_start: float = 0.3  # onecycle: share of steps spent increasing
    patience: int = 5  # plateau: epochs without improvement before decaying
    mode: MonitorMode = MonitorMode.auto  # plateau: auto follows monitor.mode


# -- trainer, callbacks, logging ----------------------------------------------------------------
@dataclass
class TrainerConf:
    _target_: str = "pytorch_lightning.Trainer"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: Any = "auto"
    num_nodes: int = 1
    precision: Any = "32-true"
    max_epochs: int = 20
    min_epochs: int | None = None
    max_steps: int = -1
    max_time: str | None = None
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    deterministic: Any = False
    benchmark: bool | None = None
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 50
    num_sanity_val_steps: int = 0
    fast_dev_run: Any = False
    overfit_batches: Any = (
        0.0  # int: that many batches; float: that fraction (Lightning reads 2.0 as a fraction)
    )
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    profiler: Any = None
    use_distributed_sampler: bool = False  # our loaders shard per rank themselves
    sync_batchnorm: bool = False


@dataclass
class CheckpointConf:
    save_last: bool = True
    every_n_epochs: int = 1


@dataclass
class MonitorConf:
    metric: str = "auto"  # auto: val/acc (classification) or val/loss (regression)
    mode: MonitorMode = MonitorMode.auto  # auto: max for acc/f1/r2, min otherwise


@dataclass
class PathsConf:
    output_dir: str = "outputs"
    data_dir: str = "data"
    run_dir: str = MISSING


@dataclass
class SweepTrialConf:
    """Set by the lapp_optuna sweeper for each trial: where the job reports per-epoch values."""

    storage: str = MISSING  # Optuna storage URL of the study
    study_name: str = MISSING
    trial_id: int = MISSING
    number: int = MISSING  # the trial's number in the study
    metric: str | None = None  # reported each epoch for pruning; auto = monitor.metric; null = none


@dataclass
class TrainConf:
    task_name: str = "train"
    seed: int | None = 42
    data: Any = MISSING
    preprocessing: Any = MISSING
    augmentation: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    trainer: Any = MISSING
    callbacks: Any = field(default_factory=dict)
    logger: Any = field(default_factory=dict)
    paths: PathsConf = field(default_factory=PathsConf)
    monitor: MonitorConf = field(default_factory=MonitorConf)
    checkpoint: CheckpointConf = field(default_factory=CheckpointConf)
    run_test: bool = True  # test the best checkpoint after fitting
    resume: str | None = None  # a run directory to continue from its last checkpoint
    threads: int | None = None  # torch intra-op threads; null keeps torch's default
    sweep_trial: Any = (
        None  # SweepTrialConf: the Optuna trial this job runs as (set by the sweeper)
    )
    compression: Any = MISSING  # CompressionConf: prune / quantize / distill
    deployment: Any = MISSING  # DeploymentConf: ONNX export, verification, benchmark, report


@dataclass
class EvalConf:
    task_name: str = "eval"
    run_dir: str | None = None
    ckpt_path: str | None = None
    split: str = "test"
    paths: PathsConf = field(default_factory=PathsConf)
    threads: int | None = None


# -- serving and offline prediction (`lapp serve`, `lapp predict`) ------------------------------
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


# -- compression and deployment (`lapp train`, `lapp export`) ----------------------------------
class PruneMethod(str, Enum):
    unstructured = "unstructured"
    structured = "structured"


# `global` is a Python keyword, hence the functional form.
PruneScope = Enum("PruneScope", {"global": "global", "layer": "layer"}, type=str)


class PruneSchedule(str, Enum):
    cubic = "cubic"
    linear = "linear"
    one_shot = "one_shot"


class QuantMode(str, Enum):
    none = "none"
    dynamic = "dynamic"
    static = "static"


class QuantFormat(str, Enum):
    qdq = "qdq"
    qoperator = "qoperator"


class CalibrationMethod(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class DeployTarget(str, Enum):
    onnx = "onnx"
    none = "none"


class Exporter(str, Enum):
    dynamo = "dynamo"
    legacy = "legacy"


class CheckpointChoice(str, Enum):
    best = "best"
    last = "last"


@dataclass
class PruneConf:
    enabled: bool = False
    method: PruneMethod = PruneMethod.unstructured  # structured removes whole neurons/channels
    scope: PruneScope = PruneScope[
        "global"
    ]  # unstructured: rank weights across layers or per layer
    amount: float = 0.5  # target sparsity; structured: share of each layer's channels removed
    schedule: PruneSchedule = PruneSchedule.cubic  # how sparsity rises toward `amount`
    start_epoch: int = 1  # training: the first pruning step, at the start of this epoch
    ramp: float = (
        0.5  # training: share of the later epochs spent reaching `amount`; the rest fine-tune
    )
    finetune_epochs: int = 3  # `lapp export`: fine-tuning epochs while pruning a trained model
    finetune_lr_scale: float = 0.1  # `lapp export`: fine-tuning lr = the run's lr * this
    layers: list[str] = field(default_factory=lambda: ["linear", "conv"])  # layer kinds pruned


@dataclass
class QuantizeConf:
    mode: QuantMode = QuantMode.none  # dynamic: int8 weights; static: int8 weights and activations
    format: QuantFormat = QuantFormat.qdq  # static only: QDQ nodes or fused QOperator ops
    per_channel: bool = True  # one scale per output channel (more accurate)
    calibration_batches: int = 8  # static: training-split batches used to calibrate
    calibration_batch_size: int = 64
    calibration_method: CalibrationMethod = CalibrationMethod.minmax
    calibration_data: str | None = (
        None  # static: a .npy/.npz of raw inputs instead of the training split
    )


@dataclass
class DistillConf:
    enabled: bool = False
    teacher: str | None = None  # run directory of the trained teacher
    temperature: float = 4.0  # softens both distributions; the soft loss is scaled by T^2
    alpha: float = 0.7  # weight of the teacher (soft) loss; 1 - alpha on the labels
    baseline: bool = True  # also train the student alone, for the report's comparison


@dataclass
class CompressionConf:
    name: str = "none"
    prune: PruneConf = field(default_factory=PruneConf)
    quantize: QuantizeConf = field(default_factory=QuantizeConf)
    distill: DistillConf = field(default_factory=DistillConf)


@dataclass
class BenchmarkConf:
    threads: int = 1  # torch and ONNX Runtime intra-op threads while timing
    warmup: int = 20  # untimed calls before each measurement
    iterations: int = 300  # timed batch-1 calls (latency p50/p99)
    throughput_batch: int = 256
    throughput_iterations: int = 20  # timed calls at throughput_batch


@dataclass
class DeploymentConf:
    name: DeployTarget = DeployTarget.onnx
    exporter: Exporter = Exporter.dynamo  # dynamo (torch.export) or legacy (TorchScript)
    opset: int = 20
    parity_tolerance: float = 1e-4  # max |onnx - torch| on the test split (fp32 artifacts)
    eval_batch_size: int = 512  # rows per call when scoring artifacts on the test split
    benchmark: BenchmarkConf = field(default_factory=BenchmarkConf)
    report: bool = True  # report.md and plots in the run directory


@dataclass
class ExportConf:
    task_name: str = "export"
    run_dir: str | None = None  # a directory written by `lapp train`
    checkpoint: CheckpointChoice = CheckpointChoice.best
    compression: Any = MISSING
    deployment: Any = MISSING
    paths: PathsConf = field(default_factory=PathsConf)
    seed: int | None = 42  # fine-tuning while pruning
    threads: int | None = None


GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "data": {"base": DataConf},
    "data_source": {
        "digits": DigitsSourceConf,
        "synthetic": SyntheticSourceConf,
        "mnist": MnistSourceConf,
        "table": TableSourceConf,
        "image_folder": ImageFolderSourceConf,
        "text_table": TextTableSourceConf,
        "npz": NpzSourceConf,
        "audio_folder": AudioFolderSourceConf,
    },
    "preprocessing": {"base": PreprocessingConf},
    "augmentation": {
        "base": AugmentationConf,
        "none": AugmentationConf,
        "image": ImageAugmentationConf,
        "tabular": TabularAugmentationConf,
        "text": TextAugmentationConf,
        "audio": AudioAugmentationConf,
    },
    "model": {"mlp": MLPConf, "cnn": CNNConf, "rnn": RNNConf, "transformer": TransformerConf},
    "optimizer": {"sgd": SGDConf, "adam": AdamConf, "adamw": AdamWConf},
    "scheduler": {"base": SchedulerConf},
    "trainer": {"base": TrainerConf},
    "serve": {"base": ServerConf},
    "compression": {"base": CompressionConf},
    "deployment": {"base": DeploymentConf},
}

PRIMARY_SCHEMAS: dict[str, type] = {
    "train_schema": TrainConf,
    "eval_schema": EvalConf,
    "serve_schema": ServeConf,
    "predict_schema": PredictConf,
    "export_schema": ExportConf,
}


# Our hydra/launcher options extend the schemas of Hydra's maintained launcher plugins.
LAUNCHER_SCHEMAS: dict[str, str] = {
    "joblib": "JobLibLauncherConf",
    "submitit_local": "LocalQueueConf",
    "submitit_slurm": "SlurmQueueConf",
}


def _adopt_launcher_schemas(cs: Any) -> None:
    """Store the launcher plugins' schemas as ``schema/hydra/launcher/<name>``.

    Hydra merges a YAML option into a stored config of the same name (deprecated "automatic
    schema matching"); its migration is to store the schema under another name and extend it
    in the option's defaults list. The plugins store theirs whenever Hydra scans plugins (once
    per process), so the scan is done first and their entries are then moved.
    """
    from hydra.core.plugins import Plugins
    from omegaconf import OmegaConf

    Plugins.instance()
    stored = cs.repo.get("hydra", {}).get("launcher", {})
    for name, cls in LAUNCHER_SCHEMAS.items():
        entry = stored.get(f"{name}.yaml")
        if entry is not None and OmegaConf.get_type(entry.node).__name__ == cls:
            cs.store(group="schema/hydra/launcher", name=name, node=entry.node)
            del stored[f"{name}.yaml"]


def register_configs() -> None:
    """Register every schema in Hydra's ConfigStore (idempotent; call before composing)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    _adopt_launcher_schemas(cs)
    for group, options in GROUP_SCHEMAS.items():
        for name, node in options.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    for name, node in PRIMARY_SCHEMAS.items():
        cs.store(name=name, node=node)
