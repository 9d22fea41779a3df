"""Control characters in text that came from agents, adapters or people: taken out before the text is shown.

A terminal obeys them (`ESC [2J` clears the screen, `\\r` writes over a line, OSC 8 makes a hidden link, OSC 52
writes the clipboard), and on a card they only hide or garble what is shown. An escape sequence goes whole, not
just its ESC, so no `[2J` is left behind; every other C0 control, DEL and the C1 controls go too. Tabs and line
feeds stay: they are how text is laid out.
"""

from __future__ import annotations

import re

_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, colours, clearing
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC: up to their terminator
    r"|\x1b[ -/]*[0-~]"  # the other escapes (charset selection, reset…)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as one C1 character
    r"|[\x90\x9d\x9e\x9f\x98][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS… as one C1 character
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and line feed, DEL, and the C1 controls."""


def without_controls(text: str) -> str:
    """`text` without escape sequences and control characters, but for tabs and line feeds (a `\\r\\n` becomes a
    line feed, and so does a lone `\\r`)."""
    if not _CONTROL.search(text):
        return text
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)
