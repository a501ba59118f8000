"""API keys, refused artifacts, rejected missing values and server settings errors."""

from __future__ import annotations

import pickle

import httpx
import pytest

from lightning_app.errors import ArtifactError, ConfigError, RunDirError
from tests.conftest import compose, run_lapp

KEY = "s3cret-key-for-tests"
ROW = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def test_api_key_from_the_environment_guards_everything_but_probes(start_server, strict_artifact):
    server = start_server([f"artifact={strict_artifact}"], env_extra={"LAPP_API_KEY": KEY})
    url, body = server.url, {"instances": [ROW]}
    for headers in ({}, {"X-API-Key": "wrong-key-123"}, {"Authorization": "Bearer nope-nope-nope"}):
        resp = httpx.post(f"{url}/predict", json=body, headers=headers)
        assert resp.status_code == 401 and resp.json()["error"]["status"] == 401
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{url}/metadata").status_code == 401
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(f"{url}/ready").status_code == 200
    assert httpx.post(f"{url}/predict", json=body, headers={"X-API-Key": KEY}).status_code == 200
    assert (
        httpx.post(
            f"{url}/predict", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ).status_code
        == 200
    )
    # This artifact's preprocessing does not impute: a missing value is named and refused.
    resp = httpx.post(
        f"{url}/predict", json={"instances": [[None, *ROW[1:]]]}, headers={"X-API-Key": KEY}
    )
    assert resp.status_code == 422
    assert (
        "['f0']" in resp.json()["error"]["message"]
        and "does not impute" in resp.json()["error"]["message"]
    )
    meta = httpx.get(f"{url}/metadata", headers={"X-API-Key": KEY}).json()
    assert meta["input"]["missing_values"] == "rejected" and meta["serving"]["auth"] is True


def test_api_key_from_the_config_wins_over_the_environment(monkeypatch):
    from lightning_app.serving.settings import ServeSettings

    monkeypatch.setenv("LAPP_API_KEY", "from-the-environment")
    cfg = compose("serve", [f"serve.auth.api_key={KEY}"])
    assert ServeSettings.from_config(cfg.serve, "model.onnx").api_key == KEY
    monkeypatch.delenv("LAPP_API_KEY")
    assert ServeSettings.from_config(compose("serve").serve, "model.onnx").api_key is None


def _serve(overrides, tmp_path):
    from lightning_app.recipes.serve import serve

    serve(compose("serve", [*overrides, f"paths.run_dir={tmp_path}"]))


def test_only_onnx_artifacts_are_loaded(tmp_path, trained_run):
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    with pytest.raises(ArtifactError, match="only exported ONNX"):
        _serve([f"artifact={ckpt}"], tmp_path)
    fake = tmp_path / "model.onnx"
    fake.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ArtifactError, match="not a loadable ONNX model"):
        _serve([f"artifact={fake}"], tmp_path)
    with pytest.raises(RunDirError, match=r"model\.int8\.onnx not found.*variant=fp32"):
        _serve([f"run_dir={trained_run}", "variant=int8"], tmp_path)
    with pytest.raises(RunDirError, match="pass run_dir=DIR"):
        _serve([], tmp_path)


def test_bad_server_settings_are_listed_together(tmp_path, trained_run):
    bad = [
        "serve.port=70000",
        "serve.workers=0",
        "serve.batching.max_batch_size=0",
        "serve.limits.request_timeout_s=0",
    ]
    with pytest.raises(ConfigError) as err:
        _serve([f"run_dir={trained_run}", *bad], tmp_path)
    text = str(err.value)
    for key in (
        "serve.port=70000",
        "serve.workers=0",
        "serve.batching.max_batch_size=0",
        "serve.limits.request_timeout_s=0",
    ):
        assert key in text
    assert len(err.value.problems) == 4


def test_a_short_api_key_in_the_environment_is_refused(tmp_path, trained_run, monkeypatch):
    monkeypatch.setenv("LAPP_API_KEY", "short")
    with pytest.raises(ConfigError, match="LAPP_API_KEY holds a key of 5 characters"):
        _serve([f"run_dir={trained_run}"], tmp_path)


def test_cli_errors_print_one_line_and_exit_2(tmp_path):
    result = run_lapp(["serve", "run_dir=does/not/exist"], tmp_path, timeout=60)
    assert result.returncode == 2
    assert (
        "run_dir=does/not/exist: directory not found" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_the_server_modules_import_neither_torch_nor_lightning(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, lightning_app.recipes.serve, lightning_app.recipes.predict, lightning_app.serving.server, "
        "lightning_app.serving.launch, lightning_app.serving.batch_files;"
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("option", ["default", "throughput"])
def test_every_serve_option_composes_and_validates(option, monkeypatch):
    from lightning_app.serving.settings import ENV_SETTINGS, ServeSettings

    cfg = compose("serve", [f"serve={option}"])
    settings = ServeSettings.from_config(cfg.serve, "model.onnx")
    assert settings.serve.host == "127.0.0.1" and settings.serve.workers >= 1
    monkeypatch.setenv(ENV_SETTINGS, settings.to_env())
    assert ServeSettings.from_env() == settings  # what a worker process rebuilds
