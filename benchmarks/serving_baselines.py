"""Baseline servers for benchmarks/bench_serving.py, each started as its own process.

``naive``: a plain FastAPI endpoint (pydantic body, torch eager forward of the checkpoint per
request). ``pipeline``: a plain FastAPI endpoint running a transformers text-classification
pipeline over a Hugging Face model folder (benchmarks/bench_pretrained.py). ``litserve``: LitServe over the same ONNX file as `lapp serve` (optional dependency:
``pip install 'lapp-ml[bench]'``).

    python benchmarks/serving_baselines.py naive RUN_DIR PORT
    python benchmarks/serving_baselines.py litserve RUN_DIR PORT [MAX_BATCH_SIZE]
    python benchmarks/serving_baselines.py pipeline MODEL_DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

# Classes live at module level: LitServe starts its inference worker with `spawn`, which
# pickles the API object by reference.

try:
    import litserve as ls
except ImportError:  # optional benchmark dependency
    ls = None


class NaiveBody(BaseModel):
    instances: list


def serve_naive(run_dir: Path, port: int) -> None:
    """A plain FastAPI endpoint: pydantic body, torch eager forward per request."""
    import torch
    import uvicorn
    from fastapi import FastAPI

    from lightning_app.build import load_model
    from lightning_app.runs import find_checkpoint

    torch.set_num_threads(1)
    loaded = load_model(find_checkpoint(run_dir))
    model, shape, names = loaded.model, loaded.spec.input_shape, loaded.spec.class_names
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: NaiveBody) -> dict:
        x = torch.tensor(body.instances, dtype=torch.float32).reshape(-1, *shape)
        with torch.no_grad():
            probs = model(x).softmax(-1)
        return {
            "predictions": [
                {"label": names[i], "score": float(p[i]), "probabilities": p.tolist()}
                for p, i in zip(probs, probs.argmax(-1).tolist(), strict=True)
            ]
        }

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def serve_pipeline(model_dir: Path, port: int) -> None:
    """A plain FastAPI endpoint over ``transformers.pipeline("text-classification")``."""
    import torch
    import uvicorn
    from fastapi import FastAPI
    from transformers import pipeline

    torch.set_num_threads(1)
    classify = pipeline("text-classification", model=str(model_dir), device="cpu")
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: NaiveBody) -> dict:
        return {"predictions": classify(body.instances, truncation=True, max_length=128)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if ls is not None:

    class OnnxAPI(ls.LitAPI):
        """LitServe over the same ONNX file, one ONNX Runtime thread."""

        def __init__(self, path: str, shape: tuple, names: list, max_batch_size: int):
            super().__init__(
                max_batch_size=max_batch_size, batch_timeout=0.002 if max_batch_size > 1 else 0.0
            )
            self.path, self.shape, self.names = path, shape, names

        def setup(self, device):
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self.session = ort.InferenceSession(self.path, opts)

        def decode_request(self, request):
            import numpy as np

            return np.asarray(request["instances"], dtype=np.float32).reshape(-1, *self.shape)

        def batch(self, inputs):
            import numpy as np

            return np.concatenate(inputs)

        def predict(self, x):
            return self.session.run(["probs"], {"input": x})[0]

        def unbatch(self, output):
            return [row[None] for row in output]

        def encode_response(self, probs):
            return {
                "predictions": [
                    {
                        "label": self.names[int(p.argmax())],
                        "score": float(p.max()),
                        "probabilities": p.tolist(),
                    }
                    for p in probs
                ]
            }


def serve_litserve(run_dir: Path, port: int, batch: int) -> None:
    from lightning_app.serving.served_model import OnnxModel

    info = OnnxModel(run_dir / "model.onnx").info
    api = OnnxAPI(
        str(run_dir / "model.onnx"), tuple(info.spec["input_shape"]), info.class_names, batch
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=30)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    kind, run, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    if kind == "naive":
        serve_naive(run, port)
    elif kind == "pipeline":
        serve_pipeline(run, port)
    else:
        serve_litserve(run, port, int(sys.argv[4]) if len(sys.argv) > 4 else 1)
