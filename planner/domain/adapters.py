"""A registered adapter as the planner sees it: its public config, the names of its secret fields, its tools, and the
approval gates an admin classified its capabilities under."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from planner.domain.approvals import UnknownGateCategory
from planner.domain.governance import GateCategory
from planner.domain.redaction import MASK


@dataclass(frozen=True, kw_only=True)
class RegisteredAdapter:
    """An adapter as stored: its public config, and only the names of its secret fields."""

    id: int
    tenant_id: str
    kind: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    secret_fields: tuple[str, ...] = ()
    enabled: bool = True
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = 1

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def describe(self) -> dict[str, str]:
        """The settings to show an admin: public values as they are (secrets inside them masked), secrets as `set`."""
        shown = {
            name: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            for name, value in self.config.items()
        }
        shown.update({name: "set" for name in self.secret_fields})
        return dict(sorted(shown.items()))

    def timeout_for(self, capability: str) -> float | None:
        """How long a call of `capability` may take, as the admin set it for this adapter (`capabilities_timeouts`,
        else `timeout_seconds`); None when they set neither."""
        per_capability = self.config.get("capabilities_timeouts")
        for value in (
            per_capability.get(capability) if isinstance(per_capability, dict) else None,
            self.config.get("timeout_seconds"),
        ):
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
        return None

    @property
    def sealed_fields(self) -> tuple[str, ...]:
        """Every field holding a secret: the secret ones, and the public ones shown with a secret masked."""
        masked = [name for name, value in self.config.items() if MASK in json.dumps(value, ensure_ascii=False)]
        return tuple(sorted({*self.secret_fields, *masked}))


# ---- tools -------------------------------------------------------------------------------------------------------


class ToolState(StrEnum):
    """Where an admin left a tool of an adapter whose tools must be enabled (an MCP server's). A tool with no state
    stored is off: discovered, listed, never called."""

    ENABLED = "enabled"
    """Callable, while the server defines it as it did when an admin enabled it (its pinned definition)."""
    HELD = "held"
    """Not callable: the server's definition changed since it was enabled; an admin looks and enables it again."""


def fingerprint(definition: Mapping[str, Any]) -> str:
    """The SHA-256 of a tool's definition as canonical JSON: two definitions match when every field does."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_destructive(definition: Mapping[str, Any]) -> bool:
    """Whether the server says the tool may destroy or overwrite (MCP's `destructiveHint: true` annotation).

    Only an explicit `true` counts: the MCP default (true unless `readOnlyHint`) would gate every tool of a server
    that annotates none, and an admin can always require approvals for more with a policy rule.
    """
    annotations = definition.get("annotations")
    return isinstance(annotations, Mapping) and annotations.get("destructiveHint") is True


@dataclass(frozen=True, kw_only=True)
class AdapterTool:
    """A tool (a capability) of an adapter as an admin left it: enabled with its pinned definition, or held."""

    tenant_id: str
    adapter: str
    capability: str
    state: ToolState
    definition: dict[str, Any]
    """The definition as it was when an admin enabled the tool (what `pin` is the fingerprint of)."""
    pin: str
    decided_by: str
    decided_at: datetime
    held_reason: str | None = None

    @property
    def destructive(self) -> bool:
        """Every call needs a person's approval (see `is_destructive`)."""
        return is_destructive(self.definition)

    @property
    def callable(self) -> bool:
        return self.state is ToolState.ENABLED

    def matches(self, definition: Mapping[str, Any]) -> bool:
        """Whether `definition` (as the server gives it now) is the one pinned."""
        return fingerprint(definition) == self.pin


UNCLASSIFIED = ("none", "unclassified")
"""What an admin says to take every gate off a capability's classification."""


def gate_categories(names: Iterable[str]) -> tuple[GateCategory, ...]:
    """The gates `names` say (`audience`, `personal data`, `Regulated-claim`), in order, each once; `none` alone is no
    gate. Raises UnknownGateCategory for a name that is none of the six."""
    words = [name for name in names if name.strip()]
    if len(words) == 1 and words[0].strip().lower() in UNCLASSIFIED:
        return ()
    found: list[GateCategory] = []
    for name in words:
        value = name.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            found.append(GateCategory(value))
        except ValueError:
            raise UnknownGateCategory(name) from None
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, kw_only=True)
class CapabilityGates:
    """The approval gates an admin classified one capability of an adapter under (an MCP tool, an A2A skill, a
    browser recipe's capability): every call of it is held for their approvers, whatever its input declares."""

    tenant_id: str
    adapter: str
    capability: str
    categories: tuple[GateCategory, ...]
    classified_by: str
    classified_at: datetime
