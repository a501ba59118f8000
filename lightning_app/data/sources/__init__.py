"""Data sources: each reads raw data and returns a :class:`RawData`.

A source is selected by ``data.source._target_`` and knows nothing of splits, preprocessing or
batching; the DataModule does those.
"""

from lightning_app.data.sources.base import RawData

__all__ = ["RawData"]
