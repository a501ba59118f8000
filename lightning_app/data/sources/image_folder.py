"""Images in one sub-folder per class, read with Pillow, converted and resized.

Layouts::

    root/<class>/*.png                    random (seeded, stratified) splits
    root/<train|val|test>/<class>/*.png   the folders are the splits

The class list is fitted on the training split (a class folder that exists only under
``val``/``test`` is an unseen label). An image that cannot be decoded is skipped and counted
(``on_error=skip``) or stops the run naming the file (``on_error=fail``).

Serving raw images the way training read them::

    state = json.loads(RunDir(run_dir).preprocessing.read_text())
    x = encode_images([path_or_bytes_or_pil, ...], state["image"])   # float32 (N, C, H, W)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import OnError
from lightning_app.data.sources.base import RawData
from lightning_app.data.splits import SPLIT_NAMES
from lightning_app.errors import ConfigError, DataError

MODES = {"grayscale": "L", "rgb": "RGB"}
ON_ERROR = choices(OnError)
DEFAULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
LISTED_SKIPS = 20  # skipped files named in the report


class ImageDecodeError(DataError):
    """An image file cannot be decoded."""


def read_image(image: Any, size: Sequence[int], mode: str) -> np.ndarray:
    """One image as uint8 ``(C, H, W)``: Pillow-decoded, converted to ``mode``, resized.

    Args:
        image: a path, raw file bytes, or a ``PIL.Image``.
        size: ``[height, width]``.
        mode: Pillow mode, ``L`` (grayscale) or ``RGB``.
    """
    from PIL import Image

    try:
        if isinstance(image, Image.Image):
            img = image
        elif isinstance(image, bytes | bytearray):
            img = Image.open(io.BytesIO(image))
        else:
            img = Image.open(image)
        with img:
            img = img.convert(mode)
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        name = image if isinstance(image, str | Path) else "image"
        raise ImageDecodeError(f"cannot decode {name}: {type(err).__name__}: {err}") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def encode_images(images: Sequence[Any], state: dict[str, Any]) -> np.ndarray:
    """Raw images -> the model's float32 input ``(N, C, H, W)``, as in training.

    Args:
        images: paths, bytes or PIL images.
        state: ``preprocessing.json``'s ``image`` entry (``{"size": [H, W], "mode": "L"}``).
    """
    return np.stack([read_image(img, state["size"], state["mode"]) for img in images]).astype(
        np.float32
    )


class ImageFolderSource:
    """Class-per-folder images.

    Args:
        root: the folder holding one sub-folder per class (or ``train``/``val``/``test`` folders
            that each hold one sub-folder per class).
        size: ``[height, width]`` every image is resized to.
        mode: ``grayscale`` (1 channel) or ``rgb`` (3 channels).
        extensions: file suffixes read (case-insensitive); other files are ignored.
        on_error: ``skip`` (count and go on) or ``fail`` for an image that cannot be decoded.
        streaming: keep only the file list in memory and decode each batch when it is served
            (:mod:`lightning_app.data.streaming.images`).
    """

    def __init__(
        self,
        root: str,
        size: Sequence[int] = (32, 32),
        mode: str = "grayscale",
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        on_error: str = "skip",
        streaming: bool = False,
    ):
        problems = []
        if len(size) != 2 or min(size) < 1:
            problems.append(f"data.source.size={list(size)}: must be [height, width], both >= 1")
        if mode not in MODES:
            problems.append(f"data.source.mode={mode!r}: allowed {list(MODES)}")
        if on_error not in ON_ERROR:
            problems.append(f"data.source.on_error={on_error!r}: allowed {list(ON_ERROR)}")
        if problems:
            raise ConfigError(problems)
        self.root, self.size, self.mode = Path(str(root)).expanduser(), [int(s) for s in size], mode
        self.extensions = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        self.on_error = on_error
        self.streaming = bool(streaming)  # decode batch by batch (data/streaming/images.py)

    def _files(self) -> tuple[list[Path], list[str], list[str] | None]:
        """Image files, their class folder names, and their split folder (or None)."""
        if not self.root.is_dir():
            raise DataError(f"data.source.root: folder not found: {self.root.resolve()}")
        subdirs = sorted(
            p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        split_layout = bool(subdirs) and all(p.name.lower() in SPLIT_NAMES for p in subdirs)
        groups = (
            [(p, SPLIT_NAMES[p.name.lower()]) for p in subdirs]
            if split_layout
            else [(self.root, None)]
        )
        files, labels, splits = [], [], []
        for base, split in groups:
            for class_dir in sorted(
                p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")
            ):
                for f in sorted(class_dir.rglob("*")):
                    if (
                        f.is_file()
                        and f.suffix.lower() in self.extensions
                        and not f.name.startswith(".")
                    ):
                        files.append(f)
                        labels.append(class_dir.name)
                        splits.append(split)
        if not files:
            raise DataError(
                f"data.source.root: no images ({', '.join(sorted(self.extensions))}) in {self.root.resolve()}; "
                "expected root/<class>/<image> or root/<train|val|test>/<class>/<image>"
            )
        return files, labels, splits if split_layout else None

    def _decode(self, path: Path) -> np.ndarray | str:
        try:
            return read_image(path, self.size, MODES[self.mode])
        except ImageDecodeError as err:
            if self.on_error == "fail":
                raise DataError(
                    f"{err} (set data.source.on_error=skip to skip such files)"
                ) from None
            return str(err)

    def load(self) -> RawData:
        from tqdm.auto import tqdm

        files, labels, splits = self._files()
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            decoded = list(
                tqdm(
                    pool.map(self._decode, files),
                    total=len(files),
                    desc="images",
                    disable=len(files) < 2000,
                )
            )
        ok = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
        skipped = [
            f"{files[i].relative_to(self.root)}: {decoded[i]}"
            for i in range(len(files))
            if isinstance(decoded[i], str)
        ]
        if not ok:
            raise DataError(
                f"data.source.root: none of the {len(files)} images in {self.root.resolve()} could be decoded"
            )
        x = np.stack([decoded[i] for i in ok])
        return RawData(
            x=x,
            y=np.array([labels[i] for i in ok], dtype=object),
            task="classification",
            input_kind="image",
            split=None if splits is None else np.array([splits[i] for i in ok]),
            report={
                "rows_read": len(ok),
                "images_found": len(files),
                "images_skipped": len(skipped),
                "images_skipped_files": skipped[:LISTED_SKIPS],
            },
            image={"size": self.size, "mode": MODES[self.mode]},
        )
