"""JSON values as a request sent them: their type names, nested shapes, and object arrays.

Used by the instance parsers for their error messages. Import cost: numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def object_array(obj: list) -> np.ndarray | None:
    """Nested lists as an object array, or None when ragged (rows of different lengths)."""
    try:
        arr = np.array(obj, dtype=object)
    except ValueError:
        return None
    return None if any(isinstance(v, list) for v in arr.reshape(-1)) else arr


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    names = {type(None): "null", bool: "a boolean", str: "a string", dict: "an object"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a list")


def shape_of(obj: Any) -> str:
    """Nested-list shape of one instance, for error messages (``[3, 4]``, ``a number``)."""
    dims = []
    while isinstance(obj, list):
        dims.append(len(obj))
        if not obj:
            break
        obj = obj[0]
    if not dims:
        return json_type(obj)
    return (
        str(dims)
        if len(dims) <= 6
        else f"[{', '.join(map(str, dims[:6]))}, ...] ({len(dims)} axes)"
    )
