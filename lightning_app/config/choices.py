"""Closed sets as the implementations see them: the values of the schemas' enums, in order."""

from __future__ import annotations

from enum import Enum


def choices(enum_cls: type[Enum], *, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The values of a schema enum (``Normalize`` -> ``("standard", "minmax", ...)``).

    Args:
        enum_cls: a ``str`` enum of ``lightning_app.config.schemas``.
        without: values an implementation handles elsewhere (e.g. ``"none"``).
    """
    return tuple(m.value for m in enum_cls if m.value not in without)
