"""`lapp predict`: files in every format, the same predictions as `POST /predict`."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from lightning_app.errors import ConfigError, DataError, RequestError
from tests.conftest import compose, run_lapp

FEATURES = [f"f{i}" for i in range(8)]


def _rows(n: int = 40) -> np.ndarray:
    x = np.random.default_rng(1).normal(size=(n, 8)).astype(np.float32)
    x[3, 2] = np.nan  # a missing value: imputed in the graph, as the server does
    return x


def _predict(overrides: list[str], tmp_path) -> int:
    from lightning_app.recipes.predict import predict

    return predict(compose("predict", [*overrides, "progress=false", f"paths.run_dir={tmp_path}"]))


def test_cli_output_matches_the_server(start_server, trained_run, tmp_path):
    x = _rows()
    frame = pd.DataFrame(x, columns=FEATURES).assign(id=[f"row-{i}" for i in range(len(x))])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.jsonl"
    result = run_lapp(
        [
            "predict",
            f"run_dir={trained_run}",
            "input=rows.csv",
            f"output={out}",
            "keep_columns=[id]",
            "top_k=2",
        ],
        tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(x)} rows predicted" in result.stdout
    offline = [json.loads(line) for line in out.read_text().splitlines()]

    server = start_server([f"run_dir={trained_run}"])
    instances = [[None if np.isnan(v) else float(v) for v in row] for row in x]
    online = httpx.post(f"{server.url}/predict", json={"instances": instances, "top_k": 2}).json()[
        "predictions"
    ]
    assert [o["id"] for o in offline] == list(frame["id"])
    for a, b in zip(offline, online, strict=True):
        assert a["label"] == b["label"] and [t["label"] for t in a["top_k"]] == [
            t["label"] for t in b["top_k"]
        ]
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "npz", "jsonl"])
def test_every_input_and_output_format_agrees(trained_run, tmp_path, fmt):
    x = _rows(25)
    src = tmp_path / f"rows.{fmt}"
    if fmt == "csv":
        pd.DataFrame(x, columns=FEATURES).to_csv(src, index=False)
    elif fmt == "parquet":
        pd.DataFrame(x, columns=FEATURES).to_parquet(src)
    elif fmt == "npz":
        np.savez(src, input=x)
    else:
        src.write_text(
            "\n".join(
                json.dumps(
                    dict(zip(FEATURES, [None if np.isnan(v) else float(v) for v in r], strict=True))
                )
                for r in x
            )
        )
    out = tmp_path / f"out.{fmt}"
    assert (
        _predict(
            [f"run_dir={trained_run}", f"input={src}", f"output={out}", "batch_size=7"], tmp_path
        )
        == 25
    )
    if fmt == "csv":
        got = pd.read_csv(out)
    elif fmt == "parquet":
        got = pd.read_parquet(out)
    elif fmt == "npz":
        with np.load(out, allow_pickle=False) as data:
            got = pd.DataFrame({k: data[k] for k in data.files})
    else:
        got = pd.DataFrame(
            [
                {
                    "label": p["label"],
                    **{f"prob_class_{i}": v for i, v in enumerate(p["probabilities"])},
                }
                for p in map(json.loads, out.read_text().splitlines())
            ]
        )
    ref = tmp_path / "ref.csv"
    pd.DataFrame(x, columns=FEATURES).to_csv(ref, index=False)
    _predict(
        [f"run_dir={trained_run}", f"input={ref}", f"output={tmp_path / 'ref_out.csv'}"], tmp_path
    )
    expected = pd.read_csv(tmp_path / "ref_out.csv")
    assert list(got["label"].astype(str)) == list(expected["label"].astype(str))
    np.testing.assert_allclose(
        got["prob_class_1"].to_numpy(float), expected["prob_class_1"].to_numpy(float), atol=1e-6
    )


def test_bad_inputs_name_the_problem(trained_run, tmp_path):
    base = [f"run_dir={trained_run}"]
    pd.DataFrame(_rows(5)[:, :7], columns=FEATURES[:7]).to_csv(tmp_path / "short.csv", index=False)
    strings = pd.DataFrame(_rows(5), columns=FEATURES).astype(object)
    strings.loc[2, "f4"] = "abc"
    strings.to_csv(tmp_path / "strings.csv", index=False)
    with pytest.raises(RequestError, match=r"\['f4'\] are not numeric"):
        _predict(
            [*base, f"input={tmp_path / 'strings.csv'}", f"output={tmp_path / 'o.csv'}"], tmp_path
        )
    with pytest.raises(RequestError, match=r"missing column\(s\) \['f7'\]"):
        _predict(
            [*base, f"input={tmp_path / 'short.csv'}", f"output={tmp_path / 'o.csv'}"], tmp_path
        )
    (tmp_path / "bad.jsonl").write_text('[1, 2, 3, 4, 5, 6, 7, 8]\n{"f0": 1\n')
    with pytest.raises(RequestError, match="line 2: malformed JSON"):
        _predict(
            [*base, f"input={tmp_path / 'bad.jsonl'}", f"output={tmp_path / 'o.csv'}"], tmp_path
        )
    (tmp_path / "wide.jsonl").write_text("[1, 2, 3]\n")
    with pytest.raises(RequestError, match=r"line 1: got shape \[3\]"):
        _predict(
            [*base, f"input={tmp_path / 'wide.jsonl'}", f"output={tmp_path / 'o.csv'}"], tmp_path
        )
    np.save(tmp_path / "x.npy", _rows(5))
    with pytest.raises(ConfigError, match=r"unsupported extension \.npy"):
        _predict([*base, f"input={tmp_path / 'x.npy'}", f"output={tmp_path / 'o.csv'}"], tmp_path)
    (tmp_path / "exists.csv").write_text("x\n")
    with pytest.raises(ConfigError, match="overwrite=true"):
        _predict(
            [*base, f"input={tmp_path / 'short.csv'}", f"output={tmp_path / 'exists.csv'}"],
            tmp_path,
        )
    with pytest.raises(DataError, match="file not found"):
        _predict(
            [*base, f"input={tmp_path / 'none.csv'}", f"output={tmp_path / 'o.csv'}"], tmp_path
        )
    with pytest.raises(ConfigError, match="input: missing"):
        _predict(base, tmp_path)
