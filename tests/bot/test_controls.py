"""What an agent's or an adapter's words may not do to a terminal or a card: every escape sequence goes whole, every
control character but tab and line feed goes, and every visible character stays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.controls import without_controls


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("Report\x1b[2J\x1b[H ready", "Report ready"),  # clears the screen, moves the cursor home
        ("\x1b[31;1mred\x1b[0m", "red"),  # colours
        ("see \x1b]8;;https://evil.example\x07the docs\x1b]8;;\x07", "see the docs"),  # a hidden link (OSC 8)
        ("see \x1b]8;;https://evil.example\x1b\\the docs\x1b]8;;\x1b\\", "see the docs"),  # the same, ST-terminated
        ("a\x1b]52;c;ZXZpbA==\x07b", "ab"),  # writes the clipboard (OSC 52)
        ("a\x1bP+q544e\x1b\\b", "ab"),  # a device control string
        ("a\x9b2Jb", "ab"),  # CSI as one C1 character
        ("a\x9d0;title\x9cb", "ab"),  # OSC as one C1 character
        ("a\x1bcb", "ab"),  # full reset
        ("ok: 3 tools\rFAILED", "ok: 3 tools\nFAILED"),  # a carriage return would write over the line
        ("one\r\ntwo", "one\ntwo"),
        ("bell\x07 back\x08space nul\x00 del\x7f nel\x85", "bell backspace nul del nel"),
        ("tab\tand\nline", "tab\tand\nline"),
        ("é ✅ \u2060 日本", "é ✅ \u2060 日本"),
    ],
)
def test_escape_sequences_go_whole_and_control_characters_go(hostile: str, shown: str) -> None:
    assert without_controls(hostile) == shown


@given(st.text())
def test_nothing_left_can_drive_a_terminal(text: str) -> None:
    shown = without_controls(text)
    assert not any((ord(ch) < 0x20 and ch not in "\t\n") or 0x7F <= ord(ch) <= 0x9F for ch in shown)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc",))))
def test_text_without_controls_is_left_exactly_as_it_is(text: str) -> None:
    assert without_controls(text) == text
