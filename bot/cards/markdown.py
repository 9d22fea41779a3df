"""Markdown in cards and messages: people's and agents' words shown as text, the bot's own formatting as meant.

Teams reads a TextBlock, a fact's title and value, and a message's text as Markdown (links, bold, italics, lists,
headings) and a message's text as some HTML too. A task title, a name, a note or an agent's answer holding
`[✅ Approve](https://…)` would otherwise put a link beside a card's real buttons. `literal` keeps every visible
character and takes the meaning away; the element builders (bot/cards/elements.py) apply it to every text that is
not `Markdown`, so a new card cannot forget it.

Two means. A WORD JOINER (U+2060: invisible, no line break) after `]`, `<`, `&` and `{`, and at the start of a line
that would open a list, heading, quote, table or code block: no Markdown or HTML syntax lets anything stand there, so
split by it, `](`, `<at>`, `&amp;` and `{{DATE(…)}}` read as no link, tag, entity or date function, whatever the
renderer. And a backslash before the emphasis marks (`*`, `_` where it could open or close emphasis, `~`, a backtick)
and before a backslash, as CommonMark defines: a renderer that reads escapes shows the mark alone, one that ignores
them shows the backslash too, which is noise, never formatting. A bare URL stays as it is: it shows where it leads.
Control characters and escape sequences go (bot/controls.py).
"""

from __future__ import annotations

import re

from bot.controls import without_controls

WORD_JOINER = "\u2060"
EXCERPT_CHARS = 60
"""How much of a person's input a reply repeats back."""

_INLINE = re.compile(r"[\\*~`]|(?<![^\W_])_|_(?![^\W_])|[\]<&{]")
"""Marks that mean something wherever they are; `_` only where it could open or close emphasis (not in `a_b`)."""
_BLOCK = re.compile(
    r"(?:^|(?<=[\r\n]))(?=[ \t]*(?:#{1,6}(?:\s|$)|[>|=:]|[-+](?:[\s-]|$)|[0-9]{1,9}[.)](?:\s|$))|[ \t]*\t|[ \t]{4})"
)
"""The start of a line that would open a heading, quote, table row, setext underline, list, rule or code block (a
line of `*` or `_` cannot: they are escaped)."""


class Markdown(str):
    """Text the bot wrote, whose Markdown is meant (bold, a list): shown as it is, never escaped.

    Build it with `markdown(...)`, which escapes what goes into it; `str` operations on it return plain `str` again,
    which is shown escaped: joining or slicing cannot turn data into formatting by mistake.
    """


def literal(text: str) -> str:
    """`text` to show as it was written: every visible character kept, no link, emphasis, list, heading or tag."""
    if isinstance(text, Markdown):
        return text
    escaped = _INLINE.sub(_neutralised, without_controls(str(text)))
    return _BLOCK.sub(WORD_JOINER, escaped)


def _neutralised(match: re.Match[str]) -> str:
    mark = match.group(0)
    if mark in "]<&{":
        return mark + WORD_JOINER
    return "\\" + mark


def markdown(template: str, *values: object) -> Markdown:
    """`template` (the bot's own Markdown) with each `{}` filled by a value shown literally."""
    return Markdown(template.format(*(literal(str(value)) for value in values)))


_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)[^\n]+?(?<!`)\1(?!`)")
"""A CommonMark code span on one line: a run of backticks, text, and a run of as many."""
_ITEM = re.compile(r"- (?=\S)")


def literal_prose(text: str) -> str:
    """`text` written outside bot/ (a planner's or an agent's error) that may quote people's words: shown literally,
    but for its own structure: `code spans` (the commands it suggests; nothing in one is read as Markdown) and a
    `- ` at the start of a line (its lists of problems)."""
    return "".join(_line(line) for line in text.splitlines(keepends=True))


def _line(line: str) -> str:
    item = _ITEM.match(line)
    start = item.end() if item else 0
    shown = [line[:start]]
    for span in _CODE_SPAN.finditer(line, start):
        shown += [literal(line[start : span.start()]), span.group(0)]
        start = span.end()
    return "".join([*shown, literal(line[start:])])


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of `text`, the cut marked with `…`: how a reply repeats what someone typed."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def inline_code(text: str, limit: int = EXCERPT_CHARS) -> Markdown:
    """A short excerpt of `text` as inline code: nothing inside a code span is read as Markdown but a backtick,
    which becomes a look-alike (U+02CB) so the span cannot be closed early."""
    return Markdown("`" + excerpt(text, limit).replace("`", "\u02cb") + "`")
