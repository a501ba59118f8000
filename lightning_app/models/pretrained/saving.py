"""The fine-tuned backbone of a run, saved in the Hugging Face layout (``RUN_DIR/backbone/``).

A later run names the run directory as ``model.pretrained=RUN_DIR`` to start from these
weights with a new head; ``transformers`` reads the folder as any hub model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lightning_app.hub import BACKBONE_DIR


def save_backbone(net: Any, tokenizer_state: dict[str, Any] | None, run_dir: Path) -> Path:
    """Write ``net``'s backbone (adapters merged) and the run's tokenizer into ``backbone/``.

    The folder is written beside the target and renamed into place: a crash leaves either the
    previous folder or none.
    """
    from lightning_app.data.subword import SubwordTokenizer
    from lightning_app.models.pretrained.network import quiet_transformers

    net.merge_adapters()
    target = Path(run_dir) / BACKBONE_DIR
    staging = Path(tempfile.mkdtemp(prefix=".backbone-", dir=run_dir))
    try:
        with quiet_transformers():
            net.backbone.save_pretrained(str(staging))
        if tokenizer_state and tokenizer_state.get("level") == "pretrained":
            tok = SubwordTokenizer.from_state(tokenizer_state)
            tok.save(staging)
            (staging / "tokenizer_config.json").write_text(
                json.dumps({"pad_token": tok.pad_token, "model_max_length": tok.max_len}, indent=2)
            )
        if getattr(net, "feature_extractor", None):  # raw-waveform models: rate, normalization
            _save_feature_extractor(net.feature_extractor, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _save_feature_extractor(settings: dict[str, Any], directory: Path) -> None:
    """The run's ``sampling_rate`` and ``do_normalize`` as a Wav2Vec2FeatureExtractor."""
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(
        sampling_rate=settings["sampling_rate"], do_normalize=settings["do_normalize"]
    ).save_pretrained(str(directory))
