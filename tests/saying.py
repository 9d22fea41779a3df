"""What a person reads when the planner refuses: the bot's words for an error (bot/text/errors.py), which a test
asserts on rather than on the error's own plain message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from bot.text.errors import describe_plain

E = TypeVar("E", bound=BaseException)


@contextmanager
def raises_saying(expected: type[E], pattern: str) -> Iterator[pytest.ExceptionInfo[E]]:
    """Like `pytest.raises(expected, match=pattern)`, matching what the bot tells a person about the error."""
    with pytest.raises(expected) as caught:
        yield caught
    said = describe_plain(caught.value)
    assert re.search(pattern, said), f"{pattern!r} not in what the bot says: {said!r}"
