"""The tools of an adapter whose tools an admin enables one by one (an MCP server's): off until enabled, pinned then.

A server's tools are discovered (listed by `adapter tools`, `adapter test`) but none is callable until an admin
enables it. Enabling pins the tool's definition as the server gives it then (name, description, input schema,
annotations: what the admin's trust rests on) with its SHA-256. Before every call the definition the server gives
now is compared with the pin: a tool whose server changed it (a new description telling a model what to do, a wider
schema, a dropped read-only hint) is held, callable again only once an admin has looked and enabled it anew.

A tool the server marks destructive (`destructiveHint: true`) needs a person's approval for every delegation: the
policy gate flags it (planner/governance/guard.py). A delegation's input is checked against the pinned input schema
when it is asked for, and again before the call, so a wrong or missing field is named to the person who asked,
before anything reaches the vendor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from planner.domain.adapters import AdapterTool, RegisteredAdapter, ToolState, fingerprint
from planner.domain.errors import PlannerError
from planner.domain.problems import Problem, ProblemCode
from planner.domain.snapshots import snapshot
from planner.governance.gated_agent import DelegationStopped, StopCause
from planner.ports import Agent, DelegationRequest
from planner.store import Connection, Store
from planner.store import events as event_log
from planner.store.adapters import hold_tool, tool_of

_FIELD_CHARS = 80


class ToolNotEnabled(PlannerError, PermissionError):
    """The adapter's tool is off: an admin has not enabled it (or switched it off)."""

    def __init__(self, adapter: str, capability: str) -> None:
        self.adapter = adapter
        self.capability = capability
        super().__init__(f"tool {capability!r} of adapter {adapter!r} is off")


class ToolHeld(ToolNotEnabled):
    """The tool's server changed its definition since an admin enabled it: held until an admin enables it again;
    `reason` names the fields of the definition that changed (`description, inputSchema`)."""

    def __init__(self, adapter: str, capability: str, reason: str | None = None) -> None:
        self.adapter = adapter
        self.capability = capability
        self.reason = reason
        PlannerError.__init__(self, f"tool {capability!r} of adapter {adapter!r} is held: changed: {reason or '?'}")


class InputInvalid(PlannerError, ValueError):
    """A delegation's input does not fit the tool's input schema (or the schema cannot be used): `problem` says
    where (its path, the `field`) and what, as data the bot words."""

    def __init__(self, adapter: str, capability: str, problem: Problem) -> None:
        self.adapter = adapter
        self.capability = capability
        self.problem = problem
        super().__init__(f"input for {adapter!r} {capability!r} does not fit its schema: {problem}")

    @property
    def field(self) -> str:
        return self.problem.path


def _validator(schema_json: str) -> Any:
    """The validator of a schema (given as sorted JSON), checked against its metaschema; raises SchemaError."""
    schema = json.loads(schema_json)
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator_class.check_schema(schema)
    return validator_class(schema)


class Validators:
    """The validators of the input schemas tools pinned, each built (and its schema checked against its metaschema,
    which costs more than the rest of a delegation's bookkeeping) once; at most `limit` kept, the oldest dropped."""

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._by_schema: dict[str, Any] = {}

    def __call__(self, schema_json: str) -> Any:
        found = self._by_schema.get(schema_json)
        if found is None:
            found = _validator(schema_json)
            if len(self._by_schema) >= self._limit:
                self._by_schema.pop(next(iter(self._by_schema)))
            self._by_schema[schema_json] = found
        return found


SCHEMA_PATH = "inputSchema"
"""Where a problem of the tool's schema itself (not of the input) is: the field of the tool's definition."""

_BOUNDS = {
    "minimum": ProblemCode.BELOW_MINIMUM,
    "maximum": ProblemCode.ABOVE_MAXIMUM,
    "exclusiveMinimum": ProblemCode.NOT_ABOVE,
    "exclusiveMaximum": ProblemCode.NOT_BELOW,
    "multipleOf": ProblemCode.NOT_A_MULTIPLE,
}
"""The schema's keywords that bound a number, by the problem of a value beyond the bound."""
_COUNTS = {
    "minLength": ProblemCode.TEXT_AT_LEAST,
    "maxLength": ProblemCode.TEXT_AT_MOST,
    "minItems": ProblemCode.ITEMS_AT_LEAST,
    "maxItems": ProblemCode.ITEMS_AT_MOST,
}
"""The schema's keywords that bound a length, by the problem of a text or list of another length."""


def input_problem(
    schema: Mapping[str, Any], value: Mapping[str, Any], validators: Validators | None = None
) -> Problem | None:
    """The first field of `value` that `schema` (a JSON Schema) refuses, and why; None when it fits.

    The field is named by its path (`input`, `input.percent`, `input.items[2]`); a missing required field by its name;
    a schema that cannot be read or used by `inputSchema`.
    """
    try:
        validator = (validators or _validator)(json.dumps(schema, sort_keys=True))
        error = best_match(validator.iter_errors(dict(value)))
    except jsonschema.exceptions.SchemaError as broken:  # the vendor's schema, not the person's input, is wrong
        return Problem(ProblemCode.SCHEMA_UNREADABLE, SCHEMA_PATH, reason=broken.message[:_FIELD_CHARS])
    except (jsonschema.exceptions.UnknownType, Unresolvable, TypeError, ValueError, LookupError) as broken:
        return Problem(ProblemCode.SCHEMA_UNUSABLE, SCHEMA_PATH, reason=str(broken)[:_FIELD_CHARS])
    if error is None:
        return None
    path = "input"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return _schema_problem(error, path)


def _schema_problem(error: jsonschema.exceptions.ValidationError, path: str) -> Problem:
    """What the schema's rule (`error.validator`, the keyword) says of the value at `path`, as data."""
    keyword, rule, given = error.validator, error.validator_value, error.instance
    if keyword == "required" and isinstance(rule, list):
        present = set(given) if isinstance(given, Mapping) else set()
        missing = [str(name) for name in rule if name not in present]
        if missing:
            return Problem(ProblemCode.MISSING, f"{path}.{missing[0][:_FIELD_CHARS]}")
    if keyword == "additionalProperties" and isinstance(given, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        extra = [str(name) for name in given if name not in known]
        if extra and known:
            names = tuple(str(name) for name in known)
            return Problem(ProblemCode.NOT_A_FIELD, f"{path}.{extra[0][:_FIELD_CHARS]}", name=extra[0], known=names)
        if extra:
            return Problem(ProblemCode.FIELD_NOT_TAKEN, f"{path}.{extra[0][:_FIELD_CHARS]}")
    if keyword == "type" and isinstance(rule, str | list):
        types = (rule,) if isinstance(rule, str) else tuple(str(name) for name in rule)
        return Problem(ProblemCode.NOT_OF_TYPE, path, value=given, types=types)
    if keyword == "enum" and isinstance(rule, list):
        return Problem(ProblemCode.NOT_ONE_OF, path, value=given, known=tuple(rule))
    if keyword == "const":
        return Problem(ProblemCode.NOT_CONSTANT, path, value=given, expected=rule)
    if keyword in _BOUNDS:
        return Problem(_BOUNDS[str(keyword)], path, value=given, limit=rule)
    if keyword in _COUNTS:
        return Problem(_COUNTS[str(keyword)], path, limit=rule)
    if keyword == "pattern":
        return Problem(ProblemCode.PATTERN, path, value=given, pattern=rule)
    if keyword == "format":
        return Problem(ProblemCode.FORMAT, path, value=given, format=rule)
    if keyword == "uniqueItems":
        return Problem(ProblemCode.ITEMS_REPEAT, path)
    return Problem(ProblemCode.SCHEMA_SAYS, path, keyword=str(keyword), message=error.message[: _FIELD_CHARS * 2])


def check_input(
    adapter: str, tool: AdapterTool, value: Mapping[str, Any], validators: Validators | None = None
) -> None:
    """Raises InputInvalid, naming the field, when `value` does not fit the tool's pinned input schema (its validator
    from `validators` when given)."""
    schema = tool.definition.get("inputSchema")
    if not isinstance(schema, Mapping):
        return
    problem = input_problem(schema, value, validators)
    if problem is not None:
        raise InputInvalid(adapter, tool.capability, problem)


def callable_tool(adapter: str, capability: str, tool: AdapterTool | None) -> AdapterTool:
    """`tool` if it may be called. Raises ToolNotEnabled (off), ToolHeld (its definition changed)."""
    if tool is None:
        raise ToolNotEnabled(adapter, capability)
    if not tool.callable:
        raise ToolHeld(adapter, capability, tool.held_reason)
    return tool


async def record_tool(
    conn: Connection,
    *,
    store: Store,
    adapter: RegisteredAdapter,
    actor: str,
    kind: str,
    before: AdapterTool | None,
    after: AdapterTool | None,
) -> None:
    """The event of a tool enabled, switched off or held (`adapter.tool_enabled`…), on its adapter."""
    await event_log.record(
        conn,
        tenant_id=adapter.tenant_id,
        at=store.clock(),
        actor=actor,
        kind=kind,
        subject_type="adapter",
        subject_id=adapter.id,
        before=snapshot(before) if before is not None else None,
        after=snapshot(after) if after is not None else None,
    )


class PinnedTools:
    """The check before a call of an adapter whose tools are enabled one by one (`planner.governance.gated_agent`'s
    `ToolCheck`): the tool is enabled, the server defines it as it was pinned, and the input fits its schema."""

    def __init__(self, store: Store, adapter: RegisteredAdapter, validators: Validators | None = None) -> None:
        self._store = store
        self._adapter = adapter
        self._validators = validators or Validators()

    async def __call__(self, agent: Agent, request: DelegationRequest) -> None:
        """Raises DelegationStopped (the tool is off or held, now held, or the input does not fit), and what
        `Agent.capability` raises (AgentUnavailable: the server could not be asked)."""
        adapter, capability = self._adapter, request.capability
        async with self._store.read() as conn:
            stored = await tool_of(conn, adapter.tenant_id, adapter.name, capability)
        try:
            tool = callable_tool(adapter.name, capability, stored)
        except ToolNotEnabled as off:
            raise DelegationStopped(StopCause.TOOL, (), problem=off) from None
        live = await agent.capability(capability)
        if live is not None and live.definition is not None and not tool.matches(live.definition):
            held = await hold(self._store, adapter, tool, live.definition)
            raise DelegationStopped(StopCause.TOOL, (), problem=ToolHeld(adapter.name, capability, held.held_reason))
        try:
            check_input(adapter.name, tool, request.input, self._validators)
        except InputInvalid as invalid:
            raise DelegationStopped(StopCause.TOOL, (), problem=invalid) from None


async def hold(store: Store, adapter: RegisteredAdapter, tool: AdapterTool, now: Mapping[str, Any]) -> AdapterTool:
    """Hold the enabled `tool`, which its server now defines as `now`; the held tool (recorded, unless another
    writer held or switched it meanwhile)."""
    held = replace(tool, state=ToolState.HELD, held_reason=_what_changed(tool.definition, now))
    async with store.transaction() as conn:
        if await hold_tool(conn, tool, reason=held.held_reason or ""):
            await record_tool(
                conn,
                store=store,
                adapter=adapter,
                actor=f"agent:{adapter.name}",
                kind="adapter.tool_held",
                before=tool,
                after=held,
            )
    return held


def _what_changed(pinned: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """The fields of the definition that changed, by name (`description, inputSchema`), as `held_reason` keeps them."""
    return ", ".join(sorted(key for key in {*pinned, *now} if pinned.get(key) != now.get(key)))


def pinned(
    adapter: RegisteredAdapter, capability: str, definition: Mapping[str, Any], *, actor: str, at: datetime
) -> AdapterTool:
    """The tool `capability` of `adapter` enabled by `actor` at `at`, with `definition` pinned."""
    return AdapterTool(
        tenant_id=adapter.tenant_id,
        adapter=adapter.name,
        capability=capability,
        state=ToolState.ENABLED,
        definition=dict(definition),
        pin=fingerprint(definition),
        decided_by=actor,
        decided_at=at,
    )
