"""model.pretrained: a directory, a hub id in the local cache, or a run directory."""

from __future__ import annotations

import shutil

import pytest

from lightning_app.errors import ConfigError
from lightning_app.hub import hub_cache, resolve_pretrained


def _cache_copy(model_dir, cache, repo_id: str):
    """The layout huggingface_hub keeps: models--ORG--NAME/{refs/main, snapshots/SHA/...}."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    return repo / "snapshots" / sha


def test_a_model_directory_is_used_as_is(tiny_bert):
    assert resolve_pretrained(str(tiny_bert)) == tiny_bert


def test_a_hub_id_resolves_from_the_local_cache_offline(tiny_bert):
    snapshot = _cache_copy(tiny_bert, hub_cache(), "tiny-org/tiny-bert")
    assert resolve_pretrained("tiny-org/tiny-bert").resolve() == snapshot.resolve()


def test_a_hub_id_missing_from_the_cache_names_the_id_and_the_cache(tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve_pretrained("tiny-org/not-there")
    text = str(err.value)
    assert "'tiny-org/not-there' is not in the local Hugging Face cache" in text
    assert str(tmp_path / "hf-cache") in text and "model.download=true" in text


def test_download_while_offline_is_refused_before_any_request():
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE is set"):
        resolve_pretrained("tiny-org/not-there", download=True)


def test_a_directory_without_config_json_is_refused(tiny_bert, tmp_path):
    folder = tmp_path / "no-config"
    shutil.copytree(tiny_bert, folder)
    (folder / "config.json").unlink()
    with pytest.raises(
        ConfigError, match=r"has no config.json, so it is not a model in the Hugging Face"
    ):
        resolve_pretrained(str(folder))


def test_a_path_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(ConfigError, match="directory not found"):
        resolve_pretrained(str(tmp_path / "nope" / "deeper"))


def test_a_run_directory_without_a_backbone_says_why(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"run directory without backbone/config\.json"):
        resolve_pretrained(str(run))
