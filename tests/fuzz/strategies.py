"""Hypothesis strategies shared by the fuzz targets: JSON of any shape, messy text."""

from __future__ import annotations

from hypothesis import strategies as st

# Numbers at the edges: huge and tiny magnitudes, NaN/inf (Python's json writes and reads them).
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 3.5e38, 1e39, 2**63, -(2**63) - 1]),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "NaN", "null", "1e999", "\x00", "\ud7ff", "日本語", "👍🏽", "1,5"]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=12), st.dictionaries(TEXT, inner, max_size=10)
    ),
    max_leaves=80,
)
