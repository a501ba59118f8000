"""Subword tokenizers from the ``tokenizers`` library: a pretrained model's own, or trained here.

Levels (``data.source.tokenizer.level``):

- ``pretrained``: the fast tokenizer of a Hugging Face model directory (``tokenizer.json``, or
  the slow files that ``transformers`` converts), with its special tokens and post-processing
  (``[CLS] ... [SEP]``);
- ``bpe`` / ``wordpiece``: trained on the training split only, with ``<pad>`` (id 0) and
  ``<unk>`` (id 1) first.

The fitted tokenizer is kept whole in its state (the ``tokenizer`` key of
``preprocessing.json`` and the artifacts' ``lapp.preprocessing`` metadata), so export,
``lapp predict`` and ``lapp serve`` encode exactly as training did. Serving imports
``tokenizers`` only (no transformers, no torch)::

    {"version": 1, "level": "pretrained", "max_len": 128, "padding": "post",
     "truncation": "post", "pad_id": 0, "unk_id": 100, "vocab_size": 30522,
     "tokenizer": "<tokenizer.json content>"}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.errors import DataError

SUBWORD_LEVELS = ("pretrained", "bpe", "wordpiece")
TOKENIZER_FILE = "tokenizer.json"
STATE_VERSION = 1
PAD, UNK = "<pad>", "<unk>"
_PAD_CANDIDATES = ("[PAD]", "<pad>", "<PAD>", "[pad]")
_UNK_CANDIDATES = ("[UNK]", "<unk>", "<UNK>", "[unk]")
_SLOW_FILES = ("vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
_DIRECTION = {"pre": "left", "post": "right"}


class SubwordTokenizer:
    """Texts -> fixed-length int64 ids with a ``tokenizers.Tokenizer``.

    Args:
        tokenizer_json: the serialized fast tokenizer (``tokenizer.json`` content).
        max_len: length of every encoded sequence (special tokens included).
        level: ``pretrained``, ``bpe`` or ``wordpiece`` (recorded in the state).
        pad_id: the padding id; the network masks it out of attention.
        padding, truncation: ``pre`` (at the start) or ``post`` (at the end).
    """

    def __init__(
        self,
        tokenizer_json: str,
        max_len: int,
        level: str,
        pad_id: int,
        padding: str = "post",
        truncation: str = "post",
    ):
        from tokenizers import Tokenizer

        if level not in SUBWORD_LEVELS:
            raise DataError(f"subword tokenizer level={level!r}: allowed {list(SUBWORD_LEVELS)}")
        if max_len < 2:
            raise DataError(f"tokenizer max_len={max_len}: a subword tokenizer needs >= 2")
        try:
            self._tok = Tokenizer.from_str(tokenizer_json)
        except Exception as err:  # the library raises its own Exception subclass
            raise DataError(f"not a fast tokenizer (tokenizer.json): {err}") from None
        self.json, self.level, self.max_len, self.pad_id = tokenizer_json, level, max_len, pad_id
        self.padding, self.truncation = padding, truncation
        self.unk_id = _first_id(self._tok, _UNK_CANDIDATES)
        pad_token = self._tok.id_to_token(pad_id)
        self._tok.no_padding()
        self._tok.no_truncation()
        self._tok.enable_truncation(max_len, direction=_DIRECTION[truncation])
        self._tok.enable_padding(
            direction=_DIRECTION[padding], pad_id=pad_id, pad_token=pad_token, length=max_len
        )

    @property
    def pad_token(self) -> str:
        return self._tok.id_to_token(self.pad_id)

    @property
    def vocab_size(self) -> int:
        """Ids in all, special and added tokens included (the embedding table size)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(
        self, texts: Sequence[str], counts: dict[str, int] | None = None, longest: bool = False
    ) -> np.ndarray:
        """Token ids ``(len(texts), max_len)`` int64; ``None`` counts as an empty text.

        ``counts`` (optional) receives ``tokens`` (real tokens, specials included),
        ``unknown`` and ``truncated`` (texts longer than ``max_len``) totals. With
        ``longest`` (padding at the end only), the ids are padded only to the longest text of
        the batch (at least 2): for models that read any length (pretrained encoders), the
        same answers for less work.
        """
        if isinstance(texts, str):
            raise DataError("SubwordTokenizer.encode takes a list of texts, not one string")
        batch = self._tok.encode_batch(["" if t is None else str(t) for t in texts])
        out = np.asarray([e.ids for e in batch], dtype=np.int64).reshape(len(texts), self.max_len)
        if longest and self.padding == "post" and len(out):
            out = out[:, : max(max(sum(e.attention_mask) for e in batch), 2)]
        if counts is not None:
            real = np.asarray([sum(e.attention_mask) for e in batch], dtype=np.int64)
            counts.update(
                tokens=int(real.sum()),
                unknown=int((out == self.unk_id).sum()) if self.unk_id is not None else 0,
                truncated=sum(1 for e in batch if e.overflowing),
            )
        return out

    def state(self) -> dict[str, Any]:
        """Plain, JSON-safe description (see the module docstring)."""
        return {
            "version": STATE_VERSION,
            "level": self.level,
            "max_len": self.max_len,
            "padding": self.padding,
            "truncation": self.truncation,
            "pad_id": self.pad_id,
            "unk_id": self.unk_id,
            "vocab_size": self.vocab_size,
            "tokenizer": self.json,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SubwordTokenizer:
        try:
            return cls(
                state["tokenizer"],
                state["max_len"],
                state["level"],
                state["pad_id"],
                state["padding"],
                state["truncation"],
            )
        except (KeyError, TypeError) as err:
            raise DataError(f"not a subword tokenizer state (missing {err})") from None

    def save(self, directory: str | Path) -> Path:
        """Write ``tokenizer.json`` (padding and truncation off, as the hub layout keeps it)."""
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(self.json)
        path = Path(directory) / TOKENIZER_FILE
        plain.save(str(path))
        return path

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, directory: Path, max_len: int, padding: str, truncation: str, key: str
    ) -> SubwordTokenizer:
        """The fast tokenizer of a Hugging Face model directory.

        Raises:
            DataError: the directory holds no tokenizer (naming what it holds instead, e.g. an
                image processor), or a tokenizer without a padding token.
        """
        directory = Path(directory)
        file = directory / TOKENIZER_FILE
        if file.is_file():
            text = file.read_text(encoding="utf-8")
        elif any((directory / f).is_file() for f in _SLOW_FILES):
            text = _convert_slow(directory, key)
        else:
            raise DataError(_no_tokenizer(directory, key))
        probe = cls(text, max(max_len, 2), "pretrained", 0, padding, truncation)
        pad_id = _pad_id(directory, probe._tok)
        if pad_id is None:
            raise DataError(
                f"{key}: the tokenizer in {directory} defines no padding token ([PAD] or <pad>); "
                "an encoder fine-tuned on batches of texts needs one"
            )
        return cls(text, max_len, "pretrained", pad_id, padding, truncation)

    @classmethod
    def train(
        cls,
        texts: Iterable[str | None],
        level: str,
        vocab_size: int,
        max_len: int,
        min_freq: int = 1,
        lowercase: bool = True,
        padding: str = "pre",
        truncation: str = "post",
    ) -> SubwordTokenizer:
        """A ``bpe`` or ``wordpiece`` tokenizer trained on ``texts`` (the training split)."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        specials = [PAD, UNK]
        if level == "bpe":
            tok = Tokenizer(models.BPE(unk_token=UNK))
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials
            )
            tok.decoder = decoders.BPEDecoder()
        elif level == "wordpiece":
            tok = Tokenizer(models.WordPiece(unk_token=UNK))
            trainer = trainers.WordPieceTrainer(
                vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials
            )
            tok.decoder = decoders.WordPiece()
        else:
            raise DataError(f"tokenizer level={level!r}: trained levels are bpe and wordpiece")
        steps = [normalizers.NFKC(), *([normalizers.Lowercase()] if lowercase else [])]
        tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.train_from_iterator(("" if t is None else str(t) for t in texts), trainer=trainer)
        return cls(tok.to_str(), max_len, level, 0, padding, truncation)


def _first_id(tok: Any, candidates: Sequence[str]) -> int | None:
    for token in candidates:
        found = tok.token_to_id(token)
        if found is not None:
            return int(found)
    return None


def _pad_id(directory: Path, tok: Any) -> int | None:
    """The padding id: ``tokenizer_config.json``'s ``pad_token``, else a usual pad token."""
    config = directory / "tokenizer_config.json"
    if config.is_file():
        try:
            pad = json.loads(config.read_text(encoding="utf-8")).get("pad_token")
        except (json.JSONDecodeError, AttributeError):
            pad = None
        pad = pad.get("content") if isinstance(pad, dict) else pad
        if isinstance(pad, str) and tok.token_to_id(pad) is not None:
            return int(tok.token_to_id(pad))
    return _first_id(tok, _PAD_CANDIDATES)


def _convert_slow(directory: Path, key: str) -> str:
    """``tokenizer.json`` content from slow tokenizer files (transformers converts them)."""
    try:
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(str(directory), use_fast=True, local_files_only=True)
        return fast.backend_tokenizer.to_str()
    except Exception as err:  # transformers raises many types for unreadable files
        raise DataError(
            f"{key}: cannot build a fast tokenizer from the files in {directory}: "
            f"{type(err).__name__}: {err}"
        ) from None


def _no_tokenizer(directory: Path, key: str) -> str:
    """Why a directory has no tokenizer, naming the preprocessor it holds instead."""
    processor = directory / "preprocessor_config.json"
    kind = ""
    if processor.is_file():
        try:
            meta = json.loads(processor.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            meta = {}
        if isinstance(meta, dict) and "image_processor_type" in meta:
            kind = f"an image processor ({meta['image_processor_type']})"
        elif isinstance(meta, dict) and "feature_extractor_type" in meta:
            kind = f"an audio feature extractor ({meta['feature_extractor_type']})"
        else:
            kind = "a preprocessor_config.json"
    if kind:
        return (
            f"{key}: {directory} holds {kind} and no tokenizer: it is not a text model. "
            "A text run needs tokenizer.json (or vocab.txt / vocab.json + merges.txt); use an "
            "image or audio experiment for this model"
        )
    return (
        f"{key}: no tokenizer in {directory}: expected tokenizer.json (or the slow files "
        f"{', '.join(_SLOW_FILES)}) beside config.json"
    )
