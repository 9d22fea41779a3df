"""A registered adapter as the planner sees it: its public config, and only the names of its secret fields."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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

    @property
    def sealed_fields(self) -> tuple[str, ...]:
        """Every field holding a secret: the secret ones, and the public ones shown with a secret masked."""
        masked = [name for name, value in self.config.items() if MASK in json.dumps(value, ensure_ascii=False)]
        return tuple(sorted({*self.secret_fields, *masked}))
