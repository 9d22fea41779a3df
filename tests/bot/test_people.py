"""People are named on cards and in replies, never shown by a raw user id."""

from __future__ import annotations

from bot.text.people import SOMEONE_UNKNOWN, person_name


def test_people_are_named_never_shown_by_their_user_id() -> None:
    aad = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert person_name(aad, {aad: "Content Writer"}) == "Content Writer"
    assert person_name(aad, {}) == SOMEONE_UNKNOWN
    assert person_name("29:1a2b3c", None) == SOMEONE_UNKNOWN
    assert person_name("Content Lead", {}) == "Content Lead"  # a name typed for someone the bot does not know yet
    assert person_name(None) == "nobody"
