"""A card as an attachment's content on the wire: sent as it was built, neither copied nor walked again."""

from __future__ import annotations

from typing import Any

from msrest.serialization import Model


class CardContent(Model):
    """An Adaptive Card as an attachment's content, handed to the connector as it was built.

    botbuilder deep-copies every activity it sends, and msrest then copies an attachment's content once more,
    key by key and string by string, to serialize it: for a plan card (some 700 dicts, lists and strings) the two
    copies were the costliest part of a turn. A card is built for one message and not changed afterwards, so the
    deep copy shares it, and msrest sends it as a model's additional properties: its top-level keys, values as
    they are. The JSON on the wire is the same.
    """

    _attribute_map = {"additional_properties": {"key": "", "type": "{object}"}}

    def __init__(self, card: dict[str, Any]) -> None:
        super().__init__()
        self.additional_properties = card

    def __deepcopy__(self, memo: dict[int, Any]) -> CardContent:
        return self
