"""`lapp serve run_dir=DIR` (or `artifact=FILE.onnx`): an HTTP service over the exported model.

Also `python -m lightning_app.recipes.serve [overrides]`. Imports no torch and no Lightning: the server
needs ONNX Runtime, numpy and FastAPI only.

Read top to bottom: find the artifact -> the server settings (``cfg.serve``) -> load the model
-> serve until stopped.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from lightning_app.entry import hydra_main, run_task


def serve(cfg: DictConfig) -> None:
    """Resolve and load the artifact, validate the server settings, serve until stopped."""
    from lightning_app.serving.launch import run_server
    from lightning_app.serving.served_model import OnnxModel, resolve_artifact
    from lightning_app.serving.settings import ServeSettings

    path = resolve_artifact(cfg.run_dir, cfg.artifact, cfg.variant)
    settings = ServeSettings.from_config(cfg.serve, str(path.resolve()))
    model = OnnxModel(path, cfg.serve.intra_op_threads)
    run_server(settings, model)


@hydra.main(config_path="pkg://lightning_app.conf", config_name="serve", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    return run_task(serve, cfg)


def main() -> None:
    hydra_main(_main)


if __name__ == "__main__":
    main()
