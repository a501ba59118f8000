"""Tiny pretrained models built on the spot (tests never download): hub layout in a folder."""

from __future__ import annotations

import csv
import random
from pathlib import Path

POSITIVE = ["good", "great", "lovely", "excellent", "fine", "superb", "happy", "nice"]
NEGATIVE = ["bad", "awful", "poor", "terrible", "sad", "boring", "ugly", "worst"]
FILLER = ["the", "film", "was", "a", "plot", "actors", "and", "very", "story", "quite", "it"]


# A training run's settings for tests: no logger, callbacks, progress or summary, and the
# deployment stage's quickest export and benchmark.
QUICK_RUN = [
    "logger=none",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "deployment.exporter=legacy",
    "deployment.benchmark.warmup=1",
    "deployment.benchmark.iterations=5",
    "deployment.benchmark.throughput_iterations=1",
]


def review(rng: random.Random, label: int) -> str:
    """A short text whose label is which word list its sentiment words come from."""
    words = POSITIVE if label else NEGATIVE
    parts = rng.sample(FILLER, 4) + rng.sample(words, 2)
    rng.shuffle(parts)
    return " ".join(parts)


def write_reviews(path: Path, rows: int = 160, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["review", "sentiment", "stars"])
        for i in range(rows):
            label = i % 2
            out.writerow([review(rng, label), "pos" if label else "neg", 3 + label])
    return path


def build_tiny_bert(directory: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A BERT-like encoder with random weights and a WordPiece tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # A fixed vocabulary (a trained one numbers its tokens differently from run to run).
    words = sorted(set(POSITIVE + NEGATIVE + FILLER + ["unrelated", "words", "for", "an"]))
    letters = sorted(set("".join(words)))
    vocab = specials + words + letters + [f"##{c}" for c in letters]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)  # the same random "pretrained" weights in every session
    BertModel(config).save_pretrained(str(directory))
    return directory


def build_tiny_vit(directory: Path, size: int = 16, seed: int = 0) -> Path:
    """A ViT-like image encoder with random weights and its image processor."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    directory.mkdir(parents=True, exist_ok=True)
    config = ViTConfig(
        image_size=size,
        patch_size=4,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(seed)
    ViTModel(config).save_pretrained(str(directory))
    processor = ViTImageProcessor(
        size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.25] * 3
    )
    processor.save_pretrained(str(directory))
    return directory


def build_tiny_ast(directory: Path, frames: int = 51, bands: int = 16, seed: int = 0) -> Path:
    """An AST-like spectrogram transformer with random weights (input: frames x mel bands)."""
    import torch
    from transformers import ASTConfig, ASTModel

    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=bands,
        max_length=frames,
        frequency_stride=4,
        time_stride=4,
    )
    torch.manual_seed(seed)
    ASTModel(config).save_pretrained(str(directory))
    return directory


def build_tiny_wav2vec2(
    directory: Path, rate: int = 8000, normalize: bool = True, seed: int = 0, kind: str = "wav2vec2"
) -> Path:
    """A wav2vec2-like model of raw samples with random weights and its feature extractor.

    ``kind``: ``wav2vec2``, ``hubert`` or ``wavlm`` (the same conv encoder and sizes). The conv
    feature encoder (kernels 10, 3, 3; strides 5, 2, 2) has a receptive field of 40 samples and
    a hop of 20.
    """
    import torch
    import transformers
    from transformers import Wav2Vec2FeatureExtractor

    names = {"wav2vec2": "Wav2Vec2", "hubert": "Hubert", "wavlm": "WavLM"}[kind]
    config_class = getattr(transformers, f"{names}Config")
    model_class = getattr(transformers, f"{names}Model")
    config = config_class(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 3, 3),
        conv_stride=(5, 2, 2),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=4,
        vocab_size=8,
    )
    torch.manual_seed(seed)
    model_class(config).save_pretrained(str(directory))
    Wav2Vec2FeatureExtractor(sampling_rate=rate, do_normalize=normalize).save_pretrained(
        str(directory)
    )
    return directory
