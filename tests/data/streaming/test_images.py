"""Image folders decoded batch by batch: the same statistics and classes as in memory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.sources.image_folder import ImageFolderSource
from lightning_app.data.streaming.images import StreamingImageModule
from lightning_app.errors import DataError
from tests.data.conftest import QUICK, write_image_folder
from tests.data.streaming.conftest import LOADER, SPLIT


def _split_layout(root):
    for split, n in (("train", 10), ("val", 4), ("test", 4)):
        write_image_folder(root / split, per_class=n, seed=len(split))
    return root


def _modules(root, **source):
    memory = ArrayDataModule(
        ImageFolderSource(str(root), size=[8, 8], mode="rgb", **source), SPLIT, LOADER, {}
    )
    streamed = StreamingImageModule(
        ImageFolderSource(str(root), size=[8, 8], mode="rgb", streaming=True, **source),
        SPLIT,
        LOADER,
        {},
    )
    return memory, streamed


def test_the_same_statistics_classes_and_batches_as_in_memory(tmp_path):
    root = _split_layout(tmp_path / "img")
    (root / "train" / "cat" / "broken.png").write_bytes(b"not an image")
    memory, streamed = _modules(root)
    m, s = memory.preprocessing_state(), streamed.preprocessing_state()
    assert s["spec"] == m["spec"] and s["image"] == m["image"]
    for key in ("shift", "scale"):
        np.testing.assert_allclose(
            np.array(s["feature_transform"][key], dtype=float),
            np.array(m["feature_transform"][key], dtype=float),
            rtol=1e-5,
        )
    assert (
        s["report"]["split_sizes"]
        == m["report"]["split_sizes"]
        == {
            "train": 20,
            "val": 8,
            "test": 8,
        }
    )
    assert (
        s["report"]["images_skipped"] == 1
        and "broken.png" in s["report"]["images_skipped_files"][0]
    )
    x_m, y_m = memory.split_tensors("test")
    x_s, y_s = streamed.split_tensors("test")
    assert torch.equal(x_s, x_m) and torch.equal(y_s, y_m)


def test_hash_splits_without_split_folders_and_every_image_once(tmp_path):
    root = write_image_folder(tmp_path / "img", per_class=30)
    streamed = StreamingImageModule(
        ImageFolderSource(str(root), size=[8, 8], streaming=True), SPLIT, LOADER, {}
    )
    streamed.prepare()
    sizes = streamed.report["split_sizes"]
    assert sum(sizes.values()) == 60 and min(sizes.values()) > 0
    loader = streamed._loader("train", train=True)
    served = sum(len(y) for _, y in loader)
    assert served == sizes["train"] == len(loader.dataset)


def test_a_resumed_image_loader_skips_what_it_served(tmp_path):
    root = write_image_folder(tmp_path / "img", per_class=30)
    dm = StreamingImageModule(
        ImageFolderSource(str(root), size=[8, 8], streaming=True),
        SPLIT,
        {**LOADER, "batch_size": 4},
        {},
    )
    dm.prepare()
    whole = [y for _, y in dm._loader("train", train=True)]
    resumed = dm._loader("train", train=True)
    resumed.load_state_dict({"epoch": 0, "batches": 2})
    rest = [y for _, y in resumed]
    assert len(rest) == len(whole) - 2
    assert all(torch.equal(a, b) for a, b in zip(rest, whole[2:], strict=True))


def test_no_decodable_image_fails_naming_the_folder(tmp_path):
    root = tmp_path / "img"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"none of the 2 images in .*img could be decoded"):
        StreamingImageModule(
            ImageFolderSource(str(root), size=[8, 8], streaming=True), SPLIT, LOADER, {}
        ).prepare()


def test_lapp_train_streams_images_through_loader_workers(tmp_path, train_in_process):
    root = write_image_folder(tmp_path / "images", per_class=24)
    run_dir, _ = train_in_process(
        [
            *QUICK,
            "data=image_folder",
            f"data.source.root={root}",
            "data.source.size=[8,8]",
            "data.source.streaming=true",
            "data.loader.num_workers=2",
            "data.loader.batch_size=8",
            "augmentation=image",
            "model=cnn",
            "trainer.max_epochs=4",
        ],
        tiny=False,
    )
    state = json.loads((run_dir / "preprocessing.json").read_text())
    assert state["report"]["streaming"] is True
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] >= 0.75
