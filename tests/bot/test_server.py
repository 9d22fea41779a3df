"""The bot's server process: what it does once it listens."""

from __future__ import annotations

import gc

from bot.server import freeze_startup_heap


def test_what_start_up_made_is_left_out_of_full_garbage_collections() -> None:
    start_up: list[object] = [gc]  # a container, so the collector tracks it
    assert any(found is start_up for found in gc.get_objects())
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        assert not any(found is start_up for found in gc.get_objects())
    finally:
        gc.unfreeze()
