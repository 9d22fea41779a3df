"""Snapshots: the JSON-ready picture of a value that an event keeps of it before and after a change."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime
from typing import Any


def snapshot(value: object) -> dict[str, Any]:
    """A JSON-ready picture of a model value (dates as ISO text, enums as their values)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"cannot snapshot {type(value).__name__}")
    return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None)})
"""Types a snapshot keeps as they are (exactly these: an enum that is also a `str` is kept by its value)."""


def _plain(value: object) -> Any:
    if type(value) in _AS_THEY_ARE:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return snapshot(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields whose value differs, keyed by name (version excluded: it always moves)."""
    return {k: after[k] for k in after if k != "version" and before.get(k) != after[k]}
