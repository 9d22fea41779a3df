"""JSON from an HTTP request body, refused when it nests deeper than any honest sender needs.

Python's parser recurses once per level of nesting, and so does whatever walks the result afterwards (the shape
checks, botbuilder's deserializer, the decision log's canonical form): a body of ten thousand brackets would end
in a RecursionError, a 500, somewhere past the parser. Refusing it here, with a 400 that says why, keeps every
later step on values of a sane depth.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 32
"""Deeper than an activity (about 8 levels, with an Adaptive Card's data) or a signed event needs."""


class BadJSON(ValueError):
    """The body is not JSON, or nests deeper than `MAX_DEPTH`; the message says which."""


def read_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in `body`. Raises BadJSON."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadJSON(f"The body is not valid JSON: {error}.") from None
    except RecursionError:
        raise BadJSON(f"The body nests deeper than {max_depth} levels.") from None
    if _depth_over(value, max_depth):
        raise BadJSON(f"The body nests deeper than {max_depth} levels.")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` (walked with a stack of its own, never by recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
