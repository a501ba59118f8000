"""Fuzz `POST /predict` through the real app (FastAPI TestClient, tiny served model).

Invariant: every request is answered 200 with one prediction per instance, or a 4xx whose
JSON body names the problem; never a 5xx, never an exception out of the app.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import examples
from tests.fuzz.strategies import JSON, NUMBERS, SCALARS, TEXT

FEATURES = [f"f{i}" for i in range(8)]
MAX_BODY = 65536

ROWS = st.one_of(
    st.lists(NUMBERS, min_size=7, max_size=9),  # near the 8 features the model takes
    st.dictionaries(st.sampled_from([*FEATURES, "g", ""]), SCALARS, max_size=9),
    st.fixed_dictionaries({f: st.one_of(NUMBERS, st.none()) for f in FEATURES}),
    JSON,
)
# Number literals as text: long digit runs (past Python's 4300-digit integer limit) and junk.
NUMERALS = st.one_of(
    st.integers(min_value=1, max_value=9000).map(lambda n: "9" * n),
    st.integers(min_value=1, max_value=9000).map(lambda n: "1" + "0" * n + ".5e-3"),
    st.text(alphabet="0123456789-.eE+", min_size=1, max_size=60),
)
PAYLOADS = st.fixed_dictionaries(
    {"instances": st.one_of(st.lists(ROWS, max_size=20), JSON)},
    optional={
        "top_k": st.one_of(st.integers(min_value=-5, max_value=10), NUMBERS, JSON),
        "probabilities": st.one_of(st.booleans(), SCALARS),
        "extra": JSON,
    },
)


@pytest.fixture(scope="module")
def client(trained_run):
    from fastapi.testclient import TestClient
    from omegaconf import OmegaConf

    from lightning_app.config.schemas import ServerConf
    from lightning_app.serving.server import create_app
    from lightning_app.serving.settings import ServeSettings

    conf = OmegaConf.merge(
        OmegaConf.structured(ServerConf),
        {"limits": {"max_body_bytes": MAX_BODY, "max_instances": 64}},
    )
    settings = ServeSettings.from_config(conf, str(trained_run / "model.onnx"))
    with TestClient(create_app(settings), raise_server_exceptions=True) as c:
        yield c


def _check(resp, sent: object = None) -> None:
    assert resp.status_code < 500, resp.text[:500]
    body = resp.json()
    if resp.status_code >= 400:
        assert body["error"]["status"] == resp.status_code and body["error"]["message"]
    else:
        assert resp.status_code == 200
        if isinstance(sent, dict) and isinstance(sent.get("instances"), list):
            assert len(body["predictions"]) == len(sent["instances"])


@examples(1.0)
@given(payload=PAYLOADS)
def test_json_payloads_of_any_shape(client, payload):
    text = json.dumps(payload, allow_nan=True)
    resp = client.post("/predict", content=text, headers={"content-type": "application/json"})
    _check(resp, payload)


@examples(1.0)
@given(
    body=st.one_of(
        st.binary(max_size=3000),
        TEXT.map(str.encode),
        st.tuples(NUMERALS, st.booleans()).map(
            lambda t: (
                ('{"instances": [[1,2,3,4,5,6,7,' + t[0] + "]]}")
                if t[1]
                else ('{"instances": [[1,2,3,4,5,6,7,8]], "top_k": ' + t[0] + "}")
            ).encode()
        ),
        st.integers(min_value=1, max_value=12_000).map(
            lambda n: b'{"instances": ' + b"[" * n + b"]" * n + b"}"
        ),
    ),
    content_type=st.sampled_from(
        [None, "application/json", "text/plain", "multipart/form-data; boundary=x", "audio/wav"]
    ),
)
def test_raw_bodies_and_content_types(client, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    _check(client.post("/predict", content=body, headers=headers))


@examples(0.5)
@given(
    path=st.sampled_from(["/predict", "/metadata", "/ready", "/nope", "/predict/"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    query=st.dictionaries(TEXT, TEXT, max_size=3),
)
def test_routes_methods_and_queries(client, path, method, query):
    body = json.dumps({"instances": [[0.5] * 8]})
    resp = client.request(method, path, params=query, content=body)
    assert resp.status_code < 500, resp.text[:500]
