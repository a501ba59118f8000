"""A real `lapp serve` process and a real HTTP client: predictions, metadata, every bad request."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import numpy as np
import pytest

FEATURES = [f"f{i}" for i in range(8)]


def _predict(server, body, **kw) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json=body, timeout=10, **kw)


def _error(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"]["status"] == status
    return body["error"]["message"]


def test_probes_metadata_and_docs(module_server, trained_run):
    url = module_server.url
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/ready").json() == {"status": "ready"}
    meta = httpx.get(f"{url}/metadata").json()
    assert meta["task"] == "classification"
    assert meta["classes"] == ["class_0", "class_1", "class_2"]
    assert meta["input"]["shape"] == [8] and meta["input"]["columns"] == FEATURES
    assert meta["input"]["missing_values"] == "imputed"
    assert meta["model_version"].endswith("/fp32")
    assert meta["metrics"]  # the test metrics the artifact carries
    spec = httpx.get(f"{url}/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert len(body["example"]["instances"][0]) == 8
    assert {"400", "413", "422"} <= set(spec["paths"]["/predict"]["post"]["responses"])
    assert httpx.get(f"{url}/docs").status_code == 200


def test_predictions_match_lapp_eval(module_server, trained_run, tmp_path):
    """Every test-split row served gives the checkpoint's class; accuracy equals `lapp eval`'s."""
    import torch

    from lightning_app.build import load_model, run_datamodule
    from lightning_app.recipes.evaluate import evaluate
    from tests.conftest import compose

    ckpt = trained_run / "checkpoints" / "best.ckpt"
    results = evaluate(compose("eval", [f"ckpt_path={ckpt}", f"paths.run_dir={tmp_path}"]))
    loaded = load_model(ckpt)
    dm = run_datamodule(loaded.hparams)
    dm.prepare()
    x, y = dm.split_tensors("test")
    with torch.no_grad():
        expected = loaded.model(x).argmax(1).numpy()
    resp = _predict(module_server, {"instances": x.numpy().tolist()})
    assert resp.status_code == 200, resp.text
    served = np.array([p["index"] for p in resp.json()["predictions"]])
    np.testing.assert_array_equal(served, expected)
    assert (served == y.numpy()).mean() == pytest.approx(results["test/acc"], abs=1e-6)


def test_named_columns_top_k_and_imputed_missing_values(module_server, trained_run):
    fill = json.loads((trained_run / "preprocessing.json").read_text())["feature_transform"]["fill"]
    row = [0.5, -1.0, 2.0, 0.0, 1.0, -0.5, 0.25, 3.0]
    named = dict(zip(FEATURES, row, strict=True))
    resp = _predict(
        module_server,
        {"instances": [row, named, {**named, "f0": None}], "top_k": 2, "probabilities": True},
    )
    assert resp.status_code == 200, resp.text
    vec, by_name, missing = resp.json()["predictions"]
    assert vec["probabilities"] == pytest.approx(by_name["probabilities"])
    assert vec["top_k"][0]["index"] == vec["index"] and len(vec["top_k"]) == 2
    assert vec["score"] == pytest.approx(max(vec["probabilities"]))
    imputed = _predict(module_server, {"instances": [[fill[0], *row[1:]]]}).json()["predictions"][0]
    assert missing["probabilities"] == pytest.approx(imputed["probabilities"], abs=1e-5)
    plain = _predict(module_server, {"instances": [row], "probabilities": False}).json()[
        "predictions"
    ][0]
    assert "probabilities" not in plain and len(plain["top_k"]) == 3


@pytest.mark.parametrize(
    ("content", "status", "needle"),
    [
        (b'{"instances": [[1, 2', 400, "malformed JSON"),
        (b"\xff\xfe", 400, "malformed JSON"),
        (b"[1, 2, 3]", 422, '{"instances": [...]}'),
        (b'{"inputs": [[1]]}', 422, '{"instances": [...]}'),
        (b'{"instances": [[1,2,3,4,5,6,7,8]], "extra": 1}', 422, "unknown key(s) ['extra']"),
        (b'{"instances": [[1, 2, 3]]}', 422, "a list of 8 numbers"),
        (b'{"instances": [[1,2,3,4,5,6,7,"8"]]}', 422, "'8' is not a number"),
        (b'{"instances": [{"f0": 1}]}', 422, "missing column(s)"),
        (
            b'{"instances": [{"f0":1,"f1":1,"f2":1,"f3":1,"f4":1,"f5":1,"f6":1,"f7":1,"g":1}]}',
            422,
            "unknown column(s) ['g']",
        ),
        (b'{"instances": [[1,2,3,4,5,6,7,8]], "top_k": 0}', 422, "from 1 to 3"),
        (b'{"instances": [[1,2,3,4,5,6,7,8]], "top_k": "2"}', 422, "top_k"),
        (b'{"instances": [[1,2,3,4,5,6,7,8]], "probabilities": "yes"}', 422, "true or false"),
        (b'{"instances": [["a","b","c","d","e","f","g","h"]]}', 422, "is not a number"),
        (b'{"instances": "text"}', 422, "non-empty list"),
        (b'{"instances": [[1,2,3,4,5,6,7,1e999]]}', 422, "infinite"),
        (b'{"instances": [[1,2,3,4,5,6,7,1' + b"0" * 400 + b"]]}", 422, "beyond the float range"),
        (b'{"instances": [[1,2,3,4,5,6,7,1e300]]}', 422, "beyond the float32 range"),
        (b'{"instances": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 400, "nested too deeply"),
        (b'{"instances": [null]}', 422, "got null"),
        (b'{"instances": [[1,2,3,4,5,6,7,' + b"9" * 5000 + b"]]}", 400, "more than 4300 digits"),
        (b'{"instances": [[1,2,3,4,5,6,7,8]], "top_k": ' + b"7" * 4301 + b"}", 400, "4300"),
        (b'{"instances": [[1,2,3,4,5,6,7,8]], "top_k": ' + b"7" * 400 + b"}", 422, "from 1 to 3"),
    ],
)
def test_bad_requests_get_4xx_naming_the_problem(module_server, content, status, needle):
    resp = httpx.post(
        f"{module_server.url}/predict",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert needle in _error(resp, status)
    assert "Traceback" not in module_server.output


def test_limits_give_413_and_routing_errors_keep_the_error_shape(module_server):
    row = list(range(8))
    assert "limit is 64" in _error(_predict(module_server, {"instances": [row] * 65}), 413)
    big = b'{"instances": [' + b",".join([b"[" + b"1.000000," * 7 + b"1]"] * 2000) + b"]}"
    assert "max_body_bytes" in _error(httpx.post(f"{module_server.url}/predict", content=big), 413)
    _error(httpx.get(f"{module_server.url}/predict"), 405)
    _error(httpx.get(f"{module_server.url}/nothing-here"), 404)
    assert httpx.get(f"{module_server.url}/health").status_code == 200  # still serving


async def _mixed_load(url: str, n: int) -> list[tuple[int, int]]:
    good = {"instances": [[0.1 * i for i in range(8)]]}
    bad = [
        b'{"instances": [[1, 2]]}',
        b"{not json",
        b'{"instances": [[1,2,3,4,5,6,7,8]], "top_k": 9}',
    ]
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(i: int) -> tuple[int, int]:
            if i % 2 == 0:
                resp = await client.post("/predict", json=good)
            else:
                resp = await client.post("/predict", content=bad[i % 3])
            return i, resp.status_code

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_200_concurrent_mixed_requests_never_get_a_5xx(module_server):
    results = asyncio.run(_mixed_load(module_server.url, 200))
    statuses = [s for _, s in results]
    assert all(s < 500 for s in statuses), statuses
    assert all(s == 200 for i, s in results if i % 2 == 0)
    assert all(s in (400, 422) for i, s in results if i % 2 == 1)
    assert httpx.get(f"{module_server.url}/ready").status_code == 200


def test_metrics_are_prometheus_text(module_server):
    _predict(module_server, {"instances": [[0.0] * 8] * 3})
    _predict(module_server, {"instances": [[0.0] * 7]})
    text = httpx.get(f"{module_server.url}/metrics").text
    counts = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'^lapp_requests_total\{method="POST",path="/predict",status="(\d+)"\} (\S+)$',
            text,
            re.M,
        )
    }
    assert counts["200"] >= 1 and counts["422"] >= 1
    assert re.search(
        r'^lapp_request_duration_seconds_bucket\{le="\+Inf"\} [1-9]\d*\.0$', text, re.M
    )
    assert re.search(r"^lapp_batch_size_count [1-9]\d*\.0$", text, re.M)
    assert re.search(r"^lapp_instances_total [1-9]\d*\.0$", text, re.M)
    for line in text.splitlines():  # every sample line is `name{labels} value`
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? [-+0-9.e]+$", line), line
