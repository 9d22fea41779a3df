"""bench/browser_memory.py's memory sampling: a process and every process below it, from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench.browser_memory import descendants, sample


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A child that holds 64 MiB it has written to until its stdin closes."""
    program = "import sys; b = bytearray(64 << 20); b[::4096] = b'x' * (64 << 8); print(flush=True); sys.stdin.read()"
    process = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()  # its memory is written
    try:
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)
        process.stdout.close()


def test_a_sample_counts_this_process_and_its_children(child: subprocess.Popen[bytes]) -> None:
    alone = sample(child.pid)
    together = sample(os.getpid())

    assert child.pid in descendants(os.getpid())
    assert descendants(child.pid) == [child.pid]
    assert alone.processes == 1
    assert alone.rss >= 64 << 20
    assert alone.pss >= 60 << 20  # its own pages: nobody shares them
    assert together.processes >= 2
    assert together.rss >= alone.rss
    assert together.pss >= alone.pss
    assert (together.browsers, together.renderers) == (0, 0)
