"""Text -> fixed-length token ids, with a vocabulary fitted on the training split only.

Serving raw text::

    state = json.loads(RunDir(run_dir).preprocessing.read_text())
    tokenizer = Tokenizer.from_state(state["tokenizer"])
    ids = tokenizer.encode(["a raw sentence", "another one"])   # int64 (N, max_len)
    logits = onnx_session.run(None, {"input": ids})[0]

Id 0 is padding and id 1 the unknown token (a word outside the vocabulary); the vocabulary
holds the most frequent training tokens (ties in alphabetical order) seen at least
``min_freq`` times, up to ``vocab_size`` ids in all.

State (the ``tokenizer`` key of ``preprocessing.json``)::

    {"version": 1, "level": "word", "lowercase": true, "max_len": 64,
     "padding": "pre", "truncation": "post",
     "vocab": ["<pad>", "<unk>", "the", ...]}     # token of each id
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import Side, TokenLevel
from lightning_app.errors import DataError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
LEVELS = choices(TokenLevel)
SUBWORD_LEVELS = ("pretrained", "bpe", "wordpiece")  # lightning_app.data.subword
SIDES = choices(Side)
STATE_VERSION = 1
_WORD = re.compile(r"\w+|[^\w\s]")


class Tokenizer:
    """Splits text into words (or characters) and maps them to ids.

    Args:
        vocab: token of each id; ids 0 and 1 must be ``<pad>`` and ``<unk>``.
        max_len: length of every encoded sequence.
        level: ``word`` (words and punctuation marks) or ``char``.
        lowercase: lowercase text before splitting.
        padding: pad short sequences at the start (``pre``, best for RNNs, which read the
            last step) or at the end (``post``).
        truncation: cut long sequences at the start (``pre``, keeping the end) or at the end
            (``post``, keeping the beginning).
    """

    def __init__(
        self,
        vocab: Sequence[str],
        max_len: int,
        level: str = "word",
        lowercase: bool = True,
        padding: str = "pre",
        truncation: str = "post",
    ):
        problems = []
        if list(vocab[:2]) != [PAD, UNK]:
            problems.append(f"vocab must start with {[PAD, UNK]}")
        if max_len < 1:
            problems.append(f"max_len={max_len}: must be >= 1")
        if level not in LEVELS:
            problems.append(f"level={level!r}: allowed {list(LEVELS)}")
        for name, side in (("padding", padding), ("truncation", truncation)):
            if side not in SIDES:
                problems.append(f"{name}={side!r}: allowed {list(SIDES)}")
        if problems:
            raise DataError("invalid tokenizer: " + "; ".join(problems))
        self.vocab, self.max_len, self.level = list(vocab), int(max_len), level
        self.lowercase, self.padding, self.truncation = lowercase, padding, truncation
        self._ids = {tok: i for i, tok in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and unknown included (the embedding table size)."""
        return len(self.vocab)

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text, before id lookup."""
        text = text.lower() if self.lowercase else text
        return list(text) if self.level == "char" else _WORD.findall(text)

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        vocab_size: int = 20000,
        max_len: int = 64,
        min_freq: int = 1,
        level: str = "word",
        lowercase: bool = True,
        padding: str = "pre",
        truncation: str = "post",
    ) -> Tokenizer:
        """Build the vocabulary from training texts only."""
        probe = cls([PAD, UNK], max_len, level, lowercase, padding, truncation)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(probe.tokens(text))
        ranked = sorted(
            (tok for tok, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
        )
        return cls(
            [PAD, UNK, *ranked[: max(vocab_size - 2, 0)]],
            max_len,
            level,
            lowercase,
            padding,
            truncation,
        )

    def encode(self, texts: Sequence[str], counts: dict[str, int] | None = None) -> np.ndarray:
        """Token ids ``(len(texts), max_len)`` int64, padded and truncated as configured.

        Args:
            texts: raw strings (``None`` counts as an empty text).
            counts: optional dict that receives ``tokens``, ``unknown`` (tokens outside the
                vocabulary) and ``truncated`` (texts longer than ``max_len``) totals.
        """
        if isinstance(texts, str):
            raise DataError("Tokenizer.encode takes a list of texts, not one string")
        out = np.full((len(texts), self.max_len), PAD_ID, dtype=np.int64)
        total = unknown = truncated = 0
        for row, text in enumerate(texts):
            ids = [
                self._ids.get(tok, UNK_ID) for tok in self.tokens("" if text is None else str(text))
            ]
            total += len(ids)
            unknown += ids.count(UNK_ID)
            if len(ids) > self.max_len:
                truncated += 1
                ids = ids[-self.max_len :] if self.truncation == "pre" else ids[: self.max_len]
            if ids:
                if self.padding == "pre":
                    out[row, self.max_len - len(ids) :] = ids
                else:
                    out[row, : len(ids)] = ids
        if counts is not None:
            counts.update(tokens=total, unknown=unknown, truncated=truncated)
        return out

    def state(self) -> dict[str, Any]:
        """Plain, JSON-safe description; see the module docstring."""
        return {
            "version": STATE_VERSION,
            "level": self.level,
            "lowercase": self.lowercase,
            "max_len": self.max_len,
            "padding": self.padding,
            "truncation": self.truncation,
            "vocab": self.vocab,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        """Rebuild from :meth:`state` (``preprocessing.json``'s ``tokenizer`` entry)."""
        try:
            return cls(
                vocab=state["vocab"],
                max_len=state["max_len"],
                level=state["level"],
                lowercase=state["lowercase"],
                padding=state["padding"],
                truncation=state["truncation"],
            )
        except (KeyError, TypeError) as err:
            raise DataError(f"not a tokenizer state (missing {err})") from None


def fit_tokenizer(texts: Sequence[str | None], settings: dict[str, Any]) -> Any:
    """The tokenizer ``settings`` (``data.source.tokenizer``) ask for, fitted on ``texts``.

    ``word``/``char``: :class:`Tokenizer`; ``bpe``/``wordpiece`` (trained on ``texts``) and
    ``pretrained`` (a model's own): :class:`~lightning_app.data.subword.SubwordTokenizer`.
    """
    level = settings.get("level", "word")
    keys = ("max_len", "padding", "truncation")
    common = {k: settings[k] for k in keys if k in settings}
    if level not in SUBWORD_LEVELS:
        extra = {k: settings[k] for k in ("vocab_size", "min_freq", "lowercase") if k in settings}
        return Tokenizer.fit(texts, level=level, **common, **extra)
    from lightning_app.data.subword import SubwordTokenizer

    if level == "pretrained":
        from lightning_app.hub import resolve_pretrained

        key = "data.source.tokenizer.pretrained"
        directory = resolve_pretrained(settings["pretrained"], settings.get("download", False), key)
        return SubwordTokenizer.from_pretrained(directory, key=key, **common)
    return SubwordTokenizer.train(
        texts,
        level,
        vocab_size=settings["vocab_size"],
        min_freq=settings.get("min_freq", 1),
        lowercase=settings.get("lowercase", True),
        **common,
    )


def tokenizer_from_state(state: dict[str, Any]) -> Any:
    """The fitted tokenizer of a ``tokenizer`` state, whichever level it has."""
    if isinstance(state, dict) and state.get("level") in SUBWORD_LEVELS:
        from lightning_app.data.subword import SubwordTokenizer

        return SubwordTokenizer.from_state(state)
    return Tokenizer.from_state(state)
