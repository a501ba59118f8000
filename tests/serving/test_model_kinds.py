"""Every input kind through the server's request path: categorical columns, text, images.

Tiny runs are trained in-process on generated files, exported by the deployment stage, and
served by an in-process :class:`Service` (the HTTP layer is covered by test_server.py).
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest

from lightning_app.errors import RequestError
from tests.conftest import TINY, compose

# The tiny preset without its data choice: cheap training, export and measurement.
FAST = [o for o in TINY if not o.startswith("data")] + [
    "trainer.max_epochs=1",
    "deployment.report=false",
]


def _train(tmp_path_factory, name: str, overrides: list[str]):
    from lightning_app.recipes.train import train

    run_dir = tmp_path_factory.mktemp(name) / "run"
    train(compose("train", [*FAST, *overrides, f"paths.run_dir={run_dir}"]))
    return run_dir


def _service(run_dir):
    from omegaconf import OmegaConf

    from lightning_app.config.schemas import ServerConf
    from lightning_app.serving.service import Service
    from lightning_app.serving.settings import ServeSettings

    conf = OmegaConf.structured(ServerConf)
    return Service(ServeSettings.from_config(conf, str(run_dir / "model.onnx")))


def _predict(service, body: dict) -> list[dict]:
    from lightning_app.serving.predictions import format_predictions

    x, top_k, probabilities = service.parse_request(json.dumps(body).encode())
    return format_predictions(service.model.run(x), service.info, top_k, probabilities)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 160
    city = rng.choice(["Lyon", "Paris", "Nice"], size=n)
    age = rng.normal(40, 10, size=n)
    label = np.where((city == "Paris") ^ (age > 40), "yes", "no")
    path = tmp_path_factory.mktemp("table") / "people.csv"
    pd.DataFrame({"age": age, "city": city, "label": label}).to_csv(path, index=False)
    return _train(
        tmp_path_factory,
        "table_run",
        ["data=csv", f"data.source.path={path}", "data.source.target=label"],
    )


def test_categorical_columns_are_encoded_as_in_training(table_run):
    service = _service(table_run)
    assert service.parser.column_names == ("age", "city")
    preds = _predict(
        service, {"instances": [{"age": 30, "city": "Paris"}, {"age": 55.5, "city": "Lyon"}]}
    )
    assert {p["label"] for p in preds} <= {"no", "yes"}
    # An unseen category goes to the unknown bucket; a missing one gets the training fill.
    assert (
        len(
            _predict(
                service, {"instances": [{"age": 30, "city": "Berlin"}, {"age": None, "city": None}]}
            )
        )
        == 2
    )
    # The encoded feature vector itself is accepted too.
    width = service.model.input_shape[0]
    assert len(_predict(service, {"instances": [[0.0] * width]})) == 1
    for bad, needle in [
        ({"age": "old", "city": "Paris"}, "non-numeric value(s) in numeric column(s) ['age']"),
        ({"age": 30}, "missing column(s) ['city']"),
        ({"age": 30, "city": "Paris", "zip": 69000}, "unknown column(s) ['zip']"),
    ]:
        with pytest.raises(RequestError, match=re_escape(needle)):
            _predict(service, {"instances": [bad]})
    # The training target may come along with a record: it is ignored.
    assert (
        len(_predict(service, {"instances": [{"age": 30, "city": "Paris", "label": "yes"}]})) == 1
    )


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    good, bad = ["great", "fine", "lovely", "good"], ["awful", "bad", "poor", "sad"]
    rows = []
    for i in range(120):
        words = good if i % 2 else bad
        rows.append(
            {
                "text": " ".join(rng.choice(words, size=4)) + " movie",
                "label": "pos" if i % 2 else "neg",
            }
        )
    path = tmp_path_factory.mktemp("text") / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return _train(
        tmp_path_factory,
        "text_run",
        [
            "data=text_csv",
            f"data.source.path={path}",
            "data.source.tokenizer.max_len=8",
            "model=mlp",
        ],
    )


def test_text_and_token_ids(text_run):
    service = _service(text_run)
    preds = _predict(
        service, {"instances": ["a great lovely movie", "awful poor movie"], "top_k": 1}
    )
    assert [len(p["top_k"]) for p in preds] == [1, 1]
    ids = service.parser.text_encoder(["a great lovely movie"])[0].tolist()
    same = _predict(service, {"instances": [ids]})
    assert same[0]["probabilities"] == pytest.approx(preds[0]["probabilities"], abs=1e-6)
    with pytest.raises(RequestError, match="out of range"):
        _predict(service, {"instances": [[10**6]]})
    with pytest.raises(RequestError, match="not a list of integers"):
        _predict(service, {"instances": [[0.5, 1.5]]})


@pytest.mark.slow
def test_images_by_shape_and_batched_requests(tmp_path_factory):
    run_dir = _train(
        tmp_path_factory,
        "image_run",
        [
            "data=synthetic",
            "data.source.input_kind=image",
            "data.source.num_features=4",
            "data.source.num_samples=96",
            "model=cnn",
        ],
    )
    service = _service(run_dir)
    image = np.random.default_rng(0).normal(size=(1, 4, 4))
    preds = _predict(
        service, {"instances": [image.tolist(), image[0].tolist(), image.reshape(-1).tolist()]}
    )
    assert preds[0]["probabilities"] == pytest.approx(preds[1]["probabilities"])
    assert preds[0]["probabilities"] == pytest.approx(preds[2]["probabilities"])

    async def batched():
        await service.batcher.start()
        xs = [
            service.parse_request(json.dumps({"instances": [image.tolist()] * k}).encode())[0]
            for k in (1, 2, 3)
        ]
        outs = await asyncio.gather(*(service.batcher.submit(x) for x in xs))
        await service.batcher.stop()
        return outs

    outs = asyncio.run(batched())
    assert [len(o["probs"]) for o in outs] == [1, 2, 3]
    np.testing.assert_allclose(outs[2]["probs"][2], preds[0]["probabilities"], atol=1e-6)
