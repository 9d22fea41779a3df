"""Delegation operations: admins register and look after adapters; people delegate tasks to them."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.cards import message_card
from bot.cards.adapters import AdapterShown, adapters_card
from bot.cards.approval import gate_label
from bot.cards.delegation import VIEW, delegations_card
from bot.cards.markdown import Markdown, literal
from bot.controls import without_controls
from bot.delegating import Delegator
from bot.operations.base import BadArguments, Context, Operation, Reply, error_text
from bot.parsing import parse_ref
from bot.text import messages
from planner.domain.adapters import RegisteredAdapter
from planner.domain.circuits import CircuitState
from planner.domain.delegations import Delegation
from planner.domain.errors import PlannerError
from planner.domain.governance import ActionKind
from planner.domain.messages import Message, MessageKind
from planner.ports import Agent, AgentError
from planner.services.registry import Registry, ToolListing
from planner.store.vault import VaultError

logger = logging.getLogger(__name__)

NAME = {"type": "string", "description": "the adapter's name, e.g. hubspot"}
DELEGATION = {"type": "string", "description": "the delegation, e.g. D12"}


def _delegator(context: Context) -> Delegator:
    if context.delegator is None:
        raise BadArguments("Delegation is not set up on this bot: an admin sets COS_SECRET_KEYS and restarts it.")
    return context.delegator


async def _as_the_admin(context: Context, agent: str, work: Callable[[], Awaitable[Reply]]) -> Reply:
    """`work`'s reply, its calls made as the admin asking (an agent that acts as each person uses their grant). When
    it has to wait for them to sign in first, the turn answers at once (Teams ends a turn that takes long) and the
    reply is posted to them when `work` finishes, as a delegation's result is."""
    delegator = _delegator(context)
    tenant_id, user_id = context.caller.tenant_id, context.caller.user_id
    signing_in = asyncio.Event()

    async def acting() -> Reply:
        with delegator.acting_for(tenant_id, user_id, agent=agent, on_sign_in=signing_in.set):
            return await work()

    working = asyncio.ensure_future(acting())
    card_sent = asyncio.ensure_future(signing_in.wait())
    try:
        await asyncio.wait({working, card_sent}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        working.cancel()
        raise
    finally:
        card_sent.cancel()
    if working.done():
        return working.result()

    async def post_when_done() -> None:
        try:
            reply = await working
        except (BadArguments, PlannerError, AgentError, VaultError) as error:
            reply = Reply(text=error_text(error), ok=False)
        except Exception:
            logger.exception("an admin's adapter command failed after their sign-in")
            reply = Reply(text=messages.FAILED, ok=False)
        payload = {"text": reply.text, "cards": list(reply.cards)}
        message = Message(recipient=user_id, kind=MessageKind.NOTICE, payload=payload)
        await context.services.outbox.fire(tenant_id, f"{MessageKind.NOTICE}:signed-in:{uuid.uuid4().hex}", [message])
        if delegator.deliver_now is not None:
            await delegator.deliver_now()

    delegator.in_background(post_when_done())
    return Reply(text=messages.FINISHING_AFTER_SIGN_IN)


def _json_arg(args: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = args.get(name)
    if value in (None, ""):
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(str(value))
    except ValueError as error:
        raise BadArguments(
            f'The {name} must be a JSON object such as {{"topic": "spring launch"}} ({error}).'
        ) from None
    if not isinstance(parsed, dict):
        raise BadArguments(f"The {name} must be a JSON object, not {type(parsed).__name__}.")
    return parsed


def _when(context: Context) -> Callable[[datetime], str]:
    """A time in the caller's words: `2 Mar 10:04` where they are (UTC when their time zone is unknown)."""
    zone = context.zone
    label = "" if zone is not None else " UTC"

    def when(at: datetime) -> str:
        local = at.astimezone(zone or UTC)
        return f"{local.day} {local:%b %H:%M}{label}"

    return when


CAPABILITIES_LISTED = 20
"""Tools or capabilities `adapters` lists of one adapter at most."""


async def list_adapters(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    tenant = context.caller.tenant_id
    registry = delegator.registry(tenant)
    entries = await registry.list_adapters()
    if not entries:
        return Reply(
            text="No adapters yet. Register one with `adapter add mcp NAME CONFIG` (or `a2a`, `browser`; CONFIG "
            "as JSON)."
        )
    circuits = await delegator.breakers(tenant).states()
    outcomes = await delegator.delegations(tenant).adapter_outcomes()
    classified: dict[str, dict[str, str]] = {}
    for classification in await registry.classifications():
        labels = ", ".join(gate_label(c.value) for c in classification.categories)
        classified.setdefault(classification.adapter, {})[classification.capability] = labels
    when = _when(context)
    shown: list[AdapterShown] = []
    for entry in entries:
        circuit = circuits.get(entry.name)
        state = circuit.state if circuit is not None else CircuitState.CLOSED
        outcome = outcomes.get(entry.name)
        heard = []
        if outcome is not None and outcome.last_success is not None:
            heard.append(f"last success {when(outcome.last_success)}")
        error = None
        if outcome is not None and outcome.last_failure is not None:
            error = f"last error {when(outcome.last_failure)}: {without_controls(outcome.last_error or '')[:160]}"
        elif circuit is not None and circuit.last_error:
            error = f"last error: {without_controls(circuit.last_error)[:160]}"
        lines = []
        gates = classified.get(entry.name, {})
        switched = registry.tools_need_enabling(entry.kind)
        states: dict[str, str] = {}
        if switched:
            states = {
                t.capability: ("on" if t.callable else "held") + (", destructive" if t.destructive else "")
                for t in await registry.switched_tools(entry.name)
            }
            if not states:
                lines.append(f"↳ no tool on: `adapter tools {entry.name}` lists them")
        else:
            # A browser adapter's recipes, or an A2A adapter's map of skills: named in its config (no call to it).
            named = entry.config.get("capabilities")
            states = {str(name): "on" for name in named} if isinstance(named, Mapping) else {}
            if not states:
                lines.append(f"↳ every skill its agent offers: `adapter test {entry.name}` lists them")
        capabilities = sorted(set(states) | set(gates))
        for capability in capabilities[:CAPABILITIES_LISTED]:
            on = states.get(capability, "off" if switched else "not in its config" if states else "")
            said = [on] if on else []
            said.append(f"gates: {gates[capability]}" if capability in gates else "no gate of its own")
            lines.append(f"↳ {capability} ({', '.join(said)})"[:300])
        if len(capabilities) > CAPABILITIES_LISTED:
            lines.append(f"↳ and {len(capabilities) - CAPABILITIES_LISTED} more: `adapter test {entry.name}`")
        shown.append(
            AdapterShown(
                title=f"{entry.key} · {'enabled' if entry.enabled else 'disabled'} · {CIRCUIT_WORDS[state]}",
                heard=" · ".join(heard or ["no delegation finished yet"]),
                error=error,
                settings=settings_line(entry),
                capabilities=lines,
            )
        )
    return Reply(cards=(adapters_card(shown),))


CIRCUIT_WORDS = {
    CircuitState.CLOSED: "circuit closed (calls go through)",
    CircuitState.OPEN: "circuit open (it kept failing: calls wait until it answers again)",
    CircuitState.HALF_OPEN: "circuit half-open (one call is trying it again)",
}


def settings_line(entry: RegisteredAdapter) -> str:
    """Where an adapter reaches and its plain settings, in one line: a setting made of parts (a sign-in recipe, a
    map of capabilities) is named, not spelled out as JSON."""
    plain, named = [], []
    for name, value in sorted(entry.config.items()):
        if name in entry.secret_fields:
            continue
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            plain.append(f"{name}: {', '.join(value)}")
        elif isinstance(value, dict) and all(isinstance(item, str) for item in value.values()):
            plain.append(f"{name}: {', '.join(f'{key}={item}' for key, item in value.items())}")  # headers, env
        elif isinstance(value, dict | list):
            named.append(name)
        elif value is not None:
            plain.append(f"{name}: {str(value).lower() if isinstance(value, bool) else value}")
    plain += [f"{name}: set" for name in entry.secret_fields]
    if named:
        plain.append("also " + ", ".join(named))
    return without_controls(" · ".join(plain))[:300]


async def register_adapter(context: Context, args: Mapping[str, Any]) -> Reply:
    kind, name = context.text_arg(args, "kind").lower(), context.text_arg(args, "name")
    entry = (
        await _delegator(context)
        .registry(context.caller.tenant_id)
        .register(kind, name, _json_arg(args, "config"), actor=context.caller.user_id)
    )
    sealed = entry.sealed_fields
    secrets = f" Secrets kept encrypted: {literal(', '.join(sealed))}." if sealed else ""
    return Reply(text=f"Adapter {literal(entry.key)} registered.{secrets} Try it with `adapter test {entry.name}`.")


async def test_adapter(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    name = context.text_arg(args, "name")
    registry = delegator.registry(context.caller.tenant_id)
    agent = await registry.open(name)
    # The admin asking is who an agent that acts as each person acts for: their grant, or a sign-in card.
    return await _as_the_admin(context, agent.name, lambda: _tested(registry, agent, name))


async def _tested(registry: Registry, agent: Agent, name: str) -> Reply:
    """Whether `agent` answers, and what it can do (its tools and whether each is on)."""
    health = await agent.health()
    lines = [f"{'Answers' if health.ok else 'Does not answer'} ({health.seconds:.2f} s): {health.detail}"]
    if health.ok:
        try:
            if registry.tools_need_enabling(agent.kind):
                lines += [tool_line(tool)[:200] for tool in await registry.tools(name)]
                lines.append(f"A tool is called only once enabled: `adapter enable {agent.name} TOOL`.")
            else:
                lines += [f"can {c.name}: {c.description}"[:200] for c in await agent.capabilities()]
        except Exception as error:  # the agent's own errors are already ours; show, never crash the turn
            lines.append(f"could not list what it can do: {error}")
    return Reply(cards=(message_card(f"Adapter {name}", lines),), ok=health.ok)


TOOL_STATES = {
    "on": "on",
    "off": "off",
    "held": "held: its server changed it, an admin enables it again",
    "gone": "enabled, but its server no longer has it",
}


def tool_line(tool: ToolListing) -> str:
    """`send_email (off, destructive: each call needs an approval): Send an email…` — the description is the
    vendor's."""
    state = TOOL_STATES[tool.state]
    if tool.destructive:
        state += ", destructive: each call needs an approval"
    description = tool.now.description if tool.now is not None else ""
    return f"{tool.capability} ({state})" + (f": {description}" if description else "")


async def list_tools(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    registry = delegator.registry(context.caller.tenant_id)
    name = context.text_arg(args, "name")
    return await _as_the_admin(context, name, lambda: _tools(registry, name))


async def _tools(registry: Registry, name: str) -> Reply:
    tools = await registry.tools(name)
    if not tools:
        return Reply(text=f"{literal(name)}'s server offers no tools.")
    lines = [tool_line(tool)[:300] for tool in tools]
    lines.append(f"Enable one with `adapter enable {name} TOOL`, switch it off with `adapter disable {name} TOOL`.")
    return Reply(cards=(message_card(f"Tools of {name}", lines),))


async def switch_tool(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    registry = delegator.registry(context.caller.tenant_id)
    name, tool = context.text_arg(args, "name"), context.text_arg(args, "tool")
    on = str(args.get("enabled", "")).lower() in ("true", "1", "on", "yes")
    if on:

        async def enable() -> Reply:
            enabled = await registry.enable_tool(name, tool, actor=context.caller.user_id)
            approval = (
                " Its server marks it destructive: every delegation to it waits for an approval."
                if (enabled.destructive)
                else ""
            )
            return Reply(
                text=f"{literal(enabled.adapter)}'s tool {literal(enabled.capability)} is on, as its server defines "
                f"it now; if the server changes it, it is held until you enable it again.{approval}"
            )

        return await _as_the_admin(context, name, enable)
    was = await registry.disable_tool(name, tool, actor=context.caller.user_id)
    if was is None:
        return Reply(text=f"{literal(name)}'s tool {literal(tool)} was off already.")
    return Reply(text=f"{literal(was.adapter)}'s tool {literal(was.capability)} is off: nothing calls it any more.")


_TWO_WORDS = re.compile(r"\b(regulated|brand|personal)[\s-]+(claim|creative|data)\b", re.IGNORECASE)
"""A gate written in two words (`personal data`), to read as one."""


def _gate_names(value: Any) -> list[str]:
    """`audience, personal data` or `["audience", "personal_data"]` as a list of names."""
    text = " ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value or "")
    text = _TWO_WORDS.sub(lambda m: f"{m[1]}_{m[2]}", text)
    return [word for word in re.split(r"[\s,;]+", text) if word]


async def classify_capability(context: Context, args: Mapping[str, Any]) -> Reply:
    registry = _delegator(context).registry(context.caller.tenant_id)
    name, capability = context.text_arg(args, "name"), context.text_arg(args, "capability")
    names = _gate_names(args.get("gates"))
    if not names:
        raise BadArguments(
            f"Under which gates? `adapter classify {name} {capability} audience personal_data` (or `none`)."
        )
    _, now = await registry.classify(name, capability, names, actor=context.caller.user_id)
    what = f"{literal(now.adapter)}'s {literal(now.capability)}"
    if not now.categories:
        return Reply(text=f"{what} is under no approval gate of its own now: only the rules and its input gate it.")
    roles = await context.services.approvals.approvers.gate_roles()
    gates = ", ".join(f"{gate_label(c.value)} ({roles[c.value]})" for c in now.categories)
    return Reply(
        text=f"{what} is classified: {gates}. Every call of it waits for those approvers, whatever its input says."
    )


async def switch_adapter(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    name = context.text_arg(args, "name")
    registry = delegator.registry(context.caller.tenant_id)
    on = str(args.get("enabled", "")).lower() in ("true", "1", "on", "yes")
    entry = await (registry.enable if on else registry.disable)(name, actor=context.caller.user_id)
    if not on:
        await delegator.pool.forget(context.caller.tenant_id, entry.name)
    return Reply(text=f"Adapter {literal(entry.key)} is {'enabled' if on else 'disabled'}.")


async def remove_adapter(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    entry = await delegator.registry(context.caller.tenant_id).remove(
        context.text_arg(args, "name"), actor=context.caller.user_id
    )
    await delegator.pool.forget(context.caller.tenant_id, entry.name)
    return Reply(text=f"Adapter {literal(entry.key)} removed, with its secrets and saved session.")


async def delegate_task(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    task_id = parse_ref(args.get("task") or "", "T", "a task")
    adapter, capability = context.text_arg(args, "adapter"), context.text_arg(args, "capability")
    delegations = delegator.delegations(context.caller.tenant_id)
    delegation = await delegations.request(
        task_id,
        adapter=adapter,
        capability=capability,
        input=_json_arg(args, "input"),
        actor=context.caller.user_id,
        start=True,
    )
    delegator.start(
        context.caller.tenant_id, delegation.id, ask=context.caller.user_id, delegations=delegations, follow=True
    )
    return Reply(
        text=(
            f"T{task_id} delegated to {literal(delegation.adapter)} ({literal(delegation.capability)}), "
            f"delegation D{delegation.id}. "
            "I'll post the result to the task's owner when it is back."
        )
    )


async def _steerable(context: Context, args: Mapping[str, Any], action: str) -> tuple[Delegator, Delegation]:
    """The delegation named in `args`, if the caller may retry or cancel it: who asked for it, its task's owner, or
    an admin. Raises DelegationNotFound, BadArguments."""
    delegator = _delegator(context)
    delegation_id = parse_ref(args.get("delegation") or "", "D", "a delegation")
    delegation = await delegator.delegations(context.caller.tenant_id).get(delegation_id)
    task = await context.plans.get_task(delegation.task_id)
    caller = context.caller
    if not caller.is_admin and caller.user_id not in (delegation.actor, task.owner):
        raise BadArguments(f"Only who delegated T{task.id}, its owner or an admin can {action} D{delegation.id}.")
    return delegator, delegation


async def retry_delegation(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator, delegation = await _steerable(context, args, "retry")
    delegations = delegator.delegations(context.caller.tenant_id)
    queued = await delegations.retry(delegation.id, actor=context.caller.user_id)
    # A code the agent asks for goes to who delegated, whoever retries.
    delegator.start(context.caller.tenant_id, queued.id, ask=None, delegations=delegations, follow=True)
    return await _steered(
        context,
        args,
        f"D{queued.id} goes to {literal(queued.adapter)} ({literal(queued.capability)}) again, as you asked. "
        "I'll post the result to the task's owner.",
    )


async def cancel_delegation(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator, delegation = await _steerable(context, args, "cancel")
    cancelled = await delegator.delegations(context.caller.tenant_id).cancel(
        delegation.id, actor=context.caller.user_id, reason=f"cancelled by {context.caller.name}"
    )
    return await _steered(
        context, args, f"D{cancelled.id} is cancelled: nothing more will be sent to {literal(cancelled.adapter)}."
    )


async def reset_adapter(context: Context, args: Mapping[str, Any]) -> Reply:
    delegator = _delegator(context)
    tenant = context.caller.tenant_id
    entry = await delegator.registry(tenant).get(context.text_arg(args, "name"))
    await delegator.breakers(tenant).reset(entry.name)
    delegations = delegator.delegations(tenant)
    waiting = [d for d in await delegations.due_for_retry(context.clock()) if d.adapter == entry.name]
    for delegation in waiting:
        delegator.start(tenant, delegation.id, ask=None)
    return Reply(
        text=f"{literal(entry.key)}'s circuit is closed: calls go through again"
        + (f", starting with the {len(waiting)} delegation(s) that waited for it." if waiting else ".")
    )


SHOWN_DELEGATIONS = 25
"""Open delegations a card lists at most (the newest)."""


async def show_delegations(context: Context, args: Mapping[str, Any]) -> Reply:
    delegations = _delegator(context).delegations(context.caller.tenant_id)
    if args.get("task"):
        found = await delegations.of_task(parse_ref(args["task"], "T", "a task"))
        if not found:
            return Reply(text="No delegations of that task yet.")
        lines = [
            f"D{d.id} T{d.task_id} → {d.adapter} {d.capability}: {d.status.value}"
            + (f" in {d.seconds:.1f} s" if d.seconds is not None else "")
            + (f" · {d.error[:160]}" if d.error else "")
            for d in found
        ]
        return Reply(cards=(message_card("Delegations", lines),))
    card = await _open_delegations_card(context)
    if card is None:
        return Reply(
            text="Nothing is running, waiting or deferred. `delegations T12` shows a task's delegations; delegate "
            "one with `delegate T12 to ADAPTER CAPABILITY`."
        )
    return Reply(cards=(card,))


async def _open_delegations_card(context: Context, *, note: str | None = None) -> dict[str, Any] | None:
    """The card of the open delegations the caller may steer (None when there are none, unless there is a `note`)."""
    delegations = _delegator(context).delegations(context.caller.tenant_id)
    everyone = context.caller.is_admin
    found = await delegations.open_delegations(
        actor=None if everyone else context.caller.user_id, limit=SHOWN_DELEGATIONS
    )
    if not found and note is None:
        return None
    tasks = await context.plans.tasks_by_id({d.task_id for d in found})
    names = await context.display_names({d.actor for d in found})
    if context.caller.user_id in {d.actor for d in found}:
        names[context.caller.user_id] = "you"
    return delegations_card(
        found,
        titles={task_id: task.title for task_id, task in tasks.items()},
        names=names,
        when=_when(context),
        everyone=everyone,
        note=note,
    )


async def _steered(context: Context, args: Mapping[str, Any], text: str) -> Reply:
    """What retry or cancel answers: clicked on the open delegations card, that card refreshed, saying what it did."""
    if args.get("from_card") and args.get("view") == VIEW:
        # The text's values are already literal: its Markdown is meant.
        return Reply(text=text, card_update=await _open_delegations_card(context, note=Markdown(text)))
    return Reply(text=text)


OPERATIONS = (
    Operation(
        name="list_adapters",
        summary="Admins: the agent adapters registered: their tools or capabilities (on, held, the gates they are "
        "classified under), circuit, last success and last error, settings (secrets only as `set`).",
        usage=("adapters",),
        parameters={"type": "object", "properties": {}},
        run=list_adapters,
        kind=ActionKind.READ,
        admin_only=True,
    ),
    Operation(
        name="register_adapter",
        summary="Admins: register an agent adapter of a kind (mcp, a2a or browser) with its configuration.",
        usage=(
            'adapter add mcp <name> {"transport": "http", "url": "https://…", "bearer_token": "…"}',
            'adapter add mcp <name> {"transport": "stdio", "command": "mcp-server-time"}',
            'adapter add a2a <name> {"url": "https://agent.vendor.example", "bearer_token": "…"}',
            'adapter add browser <name> {"origins": ["https://app.vendor.example"], "capabilities": {…}}',
        ),
        parameters={
            "type": "object",
            "properties": {"kind": {"type": "string"}, "name": NAME, "config": {"type": "object"}},
            "required": ["kind", "name", "config"],
        },
        run=register_adapter,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="test_adapter",
        summary="Admins: check that an adapter answers, and list what it can do.",
        usage=("adapter test <name>",),
        parameters={"type": "object", "properties": {"name": NAME}, "required": ["name"]},
        run=test_adapter,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="switch_adapter",
        summary="Admins: enable or disable an adapter.",
        usage=("adapter enable <name>", "adapter disable <name>"),
        parameters={
            "type": "object",
            "properties": {"name": NAME, "enabled": {"type": "boolean"}},
            "required": ["name", "enabled"],
        },
        run=switch_adapter,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="list_tools",
        summary="Admins: an MCP adapter's tools as its server defines them, and which are on, off or held.",
        usage=("adapter tools NAME",),
        parameters={"type": "object", "properties": {"name": NAME}, "required": ["name"]},
        run=list_tools,
        kind=ActionKind.READ,
        admin_only=True,
    ),
    Operation(
        name="switch_tool",
        summary="Admins: enable a tool of an MCP adapter (its definition is pinned: a changed one is held), or "
        "switch it off.",
        usage=("adapter enable <name> <tool>", "adapter disable <name> <tool>"),
        parameters={
            "type": "object",
            "properties": {"name": NAME, "tool": {"type": "string"}, "enabled": {"type": "boolean"}},
            "required": ["name", "tool", "enabled"],
        },
        run=switch_tool,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="classify_capability",
        summary="Admins: classify what an adapter's capability (an MCP tool, an A2A skill, a browser recipe's "
        "capability) does under the approval gates (strategy, audience, budget, regulated_claim, brand_creative, "
        "personal_data): every call of it then waits for their approvers, whatever its input says; `none` clears it.",
        usage=("adapter classify <name> <capability> <gate> [<gate>…]",),
        parameters={
            "type": "object",
            "properties": {
                "name": NAME,
                "capability": {"type": "string"},
                "gates": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "capability", "gates"],
        },
        run=classify_capability,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="remove_adapter",
        summary="Admins: remove an adapter with its secrets.",
        usage=("adapter remove <name>",),
        parameters={"type": "object", "properties": {"name": NAME}, "required": ["name"]},
        run=remove_adapter,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="delegate_task",
        summary="Hand a task to a vendor agent: which adapter, which of its capabilities, with what input.",
        usage=('delegate T12 to <adapter> <capability> [{"input": "as JSON"}]',),
        parameters={
            "type": "object",
            "properties": {
                "task": {"type": "string"},
                "adapter": NAME,
                "capability": {"type": "string"},
                "input": {"type": "object"},
            },
            "required": ["task", "adapter", "capability"],
        },
        run=delegate_task,
        kind=ActionKind.PLAN_CHANGE,
        human_only=True,
    ),
    Operation(
        name="reset_adapter",
        summary="Admins: close an adapter's circuit by hand (the system is back); delegations waiting for it run.",
        usage=("adapter reset <name>",),
        parameters={"type": "object", "properties": {"name": NAME}, "required": ["name"]},
        run=reset_adapter,
        kind=ActionKind.SETTING,
        admin_only=True,
    ),
    Operation(
        name="retry_delegation",
        summary="Send a delegation again that failed, was cancelled, or whose outcome is unknown (check first).",
        usage=("retry D12",),
        parameters={"type": "object", "properties": {"delegation": DELEGATION}, "required": ["delegation"]},
        run=retry_delegation,
        kind=ActionKind.PLAN_CHANGE,
        human_only=True,
    ),
    Operation(
        name="cancel_delegation",
        summary="Cancel a delegation no agent is working on (queued, waiting, held, or of unknown outcome).",
        usage=("cancel D12",),
        parameters={"type": "object", "properties": {"delegation": DELEGATION}, "required": ["delegation"]},
        run=cancel_delegation,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="show_delegations",
        summary="What is running, waiting for a person, deferred or of unknown outcome (the tenant's for admins, "
        "your own otherwise), with Retry and Cancel buttons; or a task's delegations: status, timings, errors.",
        usage=("delegations [T12]",),
        parameters={"type": "object", "properties": {"task": {"type": "string"}}},
        run=show_delegations,
        kind=ActionKind.READ,
    ),
)
