"""Schemas of the data and preprocessing groups (augmentation: ``schemas/augmentation.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


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
    bpe = "bpe"  # subword levels: the tokenizers library, trained on the training split
    wordpiece = "wordpiece"
    pretrained = "pretrained"  # the fast tokenizer of the model named by `pretrained`


class Side(str, Enum):
    pre = "pre"
    post = "post"


class AudioFeatureKind(str, Enum):
    log_mel = "log_mel"
    mfcc = "mfcc"
    waveform = "waveform"  # the clip's samples themselves (wav2vec2-like pretrained models)


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
    num_workers: int = 0  # reader processes of a streamed source (data.source.streaming=true)


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
class ReadLimitsConf:
    """Bounds of a table read; a file past one is refused with an error naming the key."""

    max_file_mb: float = 2048.0  # the file's size in MiB, on disk and decompressed
    max_line_mb: float = 8.0  # one line's length in MiB
    max_fields: int = 100_000  # columns of the header


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
    limits: ReadLimitsConf = field(default_factory=lambda: ReadLimitsConf())
    streaming: bool = False  # read the shards block by block instead of into memory
    on_error: OnError = OnError.fail  # a corrupt or mismatched shard: fail, or skip and count it
    key_column: str | None = None  # streaming: hash this column for the split (null: row position)
    block_rows: int = 65536  # streaming: rows read at a time
    shuffle_buffer: int = 131072  # streaming: rows shuffled together (training)
    quantile_sample: int = 100000  # streaming: values kept per feature for medians/quantiles


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
    streaming: bool = False  # decode each batch when served, not every image up front


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
    normalize: bool = True  # kind=waveform: per-clip zero mean, unit variance (do_normalize)


@dataclass
class AudioFolderSourceConf:
    _target_: str = "lightning_app.data.sources.audio.AudioFolderSource"
    root: str = MISSING
    sample_rate: int = 16000  # every recording is resampled to this rate
    duration: float = 1.0  # seconds; shorter recordings are padded, longer cropped
    align: AudioAlign = AudioAlign.center
    layout: AudioLayout = AudioLayout.image  # image (1, bands, frames) or sequence (frames, bands)
    features: AudioFeaturesConf = field(default_factory=AudioFeaturesConf)
    extensions: list[str] = field(default_factory=lambda: [".wav", ".flac", ".ogg"])
    on_error: OnError = OnError.skip
    streaming: bool = False  # read and featurize each batch when served, not every file up front


@dataclass
class TokenizerConf:
    level: TokenLevel = TokenLevel.word
    vocab_size: int = 20000
    max_len: int = 64
    min_freq: int = 1
    lowercase: bool = True
    padding: Side = Side.pre
    truncation: Side = Side.post
    pretrained: str | None = None  # level=pretrained: model directory, hub id or run directory
    download: bool = False  # level=pretrained: fetch a hub id missing from the local cache


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
    limits: ReadLimitsConf = field(default_factory=lambda: ReadLimitsConf())


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
