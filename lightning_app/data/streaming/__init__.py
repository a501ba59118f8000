"""Data read as it is needed (``data.source.streaming=true``): sharded tables block by block
(shards, one statistics pass, per-row splits, loaders whose readers share no shard), image and
audio folders decoded batch by batch."""

from __future__ import annotations

from typing import Any


def module_for(source: Any) -> type:
    """The DataModule class that streams ``source`` (a table, an image or an audio folder)."""
    from lightning_app.data.sources.audio import AudioFolderSource
    from lightning_app.data.sources.image_folder import ImageFolderSource

    if isinstance(source, AudioFolderSource):
        from lightning_app.data.streaming.audio import StreamingAudioModule

        return StreamingAudioModule
    if isinstance(source, ImageFolderSource):
        from lightning_app.data.streaming.images import StreamingImageModule

        return StreamingImageModule
    from lightning_app.data.streaming.datamodule import StreamingDataModule

    return StreamingDataModule
