"""The `cos` command: run the bot, migrate the database, and the operators' tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dotenv import find_dotenv, load_dotenv

from bot.controls import without_controls
from bot.manifest import add_manifest_command
from bot.settings import DATABASE_FILE, Settings, SettingsError, is_loopback

if TYPE_CHECKING:
    from planner.domain.adapters import RegisteredAdapter
    from planner.domain.decisions import DecisionKeys
    from planner.ports import Agent, DelegationRequest
    from planner.services.registry import Registry
    from planner.store import Store
    from planner.store.vault import Vault

logger = logging.getLogger("cos")


INSECURE_WARNING = (
    "WARNING: listening on {host}:{port} with NO authentication (--insecure-no-auth). Anyone who can reach this "
    "port can act as any user of any tenant: write in their name, approve what waits for them, and read their "
    "plans. Admins are still only those configured ({admins}), but anyone can claim to be one of them, so an admin "
    "is as open as everyone else: whoever reaches the port can register adapters, including a stdio adapter that "
    "runs one of the commands COS_STDIO_COMMANDS allows as this process's user. Use it only on a trusted, isolated "
    "network."
)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.host
    port = args.port or settings.port
    local_admin = (args.local_admin or "").strip() or settings.local_admin
    if local_admin and not settings.local_mode:
        print(
            "cos serve: --local-admin applies to local mode only: with MICROSOFT_APP_ID set, list the admins' "
            "Microsoft Entra object ids in COS_ADMINS.",
            file=sys.stderr,
        )
        return 2
    settings = replace(settings, host=host, port=port, local_admin=local_admin)
    if settings.local_mode and not is_loopback(host):
        if not args.insecure_no_auth:
            print(
                f"Refusing to listen on {host}: without MICROSOFT_APP_ID the bot cannot authenticate Teams, so it "
                "only listens on loopback (127.0.0.1). Set the Azure Bot credentials, or pass --insecure-no-auth "
                "if you really want an unauthenticated bot on the network (see `cos serve --help`).",
                file=sys.stderr,
            )
            return 2
        admins = ", ".join((*settings.admins, *([local_admin] if local_admin else []))) or "none"
        print(INSECURE_WARNING.format(host=host, port=port, admins=admins), file=sys.stderr)
    from bot.server import LocalKeyLost, run

    settings.make_database_folder()
    try:
        return asyncio.run(run(settings, host=host, port=port))
    except LocalKeyLost as error:
        print(f"cos serve: {error}", file=sys.stderr)
        return 2


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from planner.store import create_engine
    from planner.store.migrate import current_revision, upgrade

    if args.db_command == "upgrade":
        settings.make_database_folder()

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            if args.db_command == "upgrade":
                await upgrade(engine, args.revision)
            print(f"database at revision {await current_revision(engine)}")
        finally:
            await engine.dispose()
        return 0

    return asyncio.run(main())


def _tick(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from bot.scheduler import tick
    from bot.teams.botbuilder import create_channel
    from planner.store import Store, create_engine
    from planner.store.migrate import upgrade

    try:
        at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    except ValueError:
        print(f"cos tick: --at {args.at!r} is not an ISO-8601 time such as 2026-02-10T09:00:00+00:00", file=sys.stderr)
        return 2
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if args.at and not args.apply:
        return _rehearse_tick(settings, at)

    async def main() -> int:
        store = Store(create_engine(settings.database_url), clock=lambda: at, decision_keys=_decision_keys(settings))
        try:
            await upgrade(store.engine)
            report = await tick(store, create_channel(settings), at=at)
        finally:
            await store.close()
        d = report.delivery
        print(
            f"as of {at.isoformat()}: {report.fired} fired; {d.sent} sent, {d.held} held for approval, "
            f"{d.skipped} skipped, {d.retried} to retry, {d.dead} dead-lettered"
        )
        return 0

    return asyncio.run(main())


REHEARSAL_OUTCOMES = ("sent", "sent in a summary card", "waiting", "held", "undeliverable", "dropped")


def _rehearse_tick(settings: Settings, at: datetime) -> int:
    """`cos tick --at` without `--apply`: what the tick would do, found on a copy of the database."""
    from bot.rehearsal import CannotRehearse, rehearse_tick
    from bot.text.gates import request_reason_text
    from bot.text.triggers import firing_label

    try:
        rehearsal = asyncio.run(rehearse_tick(settings.database_url, at, decision_keys=_decision_keys(settings)))
    except CannotRehearse as error:
        print(f"cos tick: {error}", file=sys.stderr)
        return 2
    print(
        f"Rehearsal as of {at.isoformat()}, on a copy of the database ({settings.database_shown}): nothing was "
        "changed. Add --apply to do it."
    )
    print(f"{rehearsal.fired} trigger(s) would fire.")
    if rehearsal.firings:
        print("New messages would come from: " + ", ".join(firing_label(key) for key in rehearsal.firings))
    if rehearsal.recipients:
        print(f"{rehearsal.queued} message(s) would be queued; per person (or channel):")
    for person in rehearsal.recipients:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(person.queued.items()))
        outcomes = ", ".join(f"{person.outcomes[o]} {o}" for o in REHEARSAL_OUTCOMES if person.outcomes[o])
        print(
            f"  {person.name}: {sum(person.queued.values())} new" + (f" ({kinds})" if kinds else "") + f"; {outcomes}"
        )
    if rehearsal.handled_earlier:
        earlier = ", ".join(f"{n} {o}" for o in REHEARSAL_OUTCOMES if (n := rehearsal.handled_earlier[o]))
        print(f"Left out here, as an earlier run at this time handled them: {earlier}.")
    d = rehearsal.delivery
    print(
        f"Delivery in this tick: {d.sent} sent, {d.folded} more inside summary cards, {d.skipped} dropped (no longer "
        f"needed), {d.held} held for approval, "
        f"{d.dead} undeliverable (no chat with the person); the rest wait for their time (quiet hours, daily budget)."
    )
    if rehearsal.expiring:
        print(f"{len(rehearsal.expiring)} approval request(s) would expire:")
    for request in rehearsal.expiring:
        asker = rehearsal.name(request.tenant_id, request.requester)
        print(f"  {request.ref}, asked by {asker} at {request.created_at.isoformat()}: {request_reason_text(request)}")
    return 0


def _outbox(args: argparse.Namespace, settings: Settings) -> int:
    from planner.services.outbox import Outbox, dead_letters, replay
    from planner.store import Store, create_engine
    from planner.store.migrate import upgrade

    async def main() -> int:
        store = Store(create_engine(settings.database_url))
        try:
            await upgrade(store.engine)
            if args.replay:
                count = await replay(store, args.replay, tenant_id=args.tenant)
                print(f"{count} message(s) put back in the queue")
                return 0 if count == len(args.replay) else 1
            counts = await Outbox(store).counts(args.tenant)
            print("outbox: " + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty"))
            for letter in await dead_letters(store, tenant_id=args.tenant, limit=args.limit):
                print(
                    f"dead #{letter.id} {letter.kind} to {letter.recipient} (tenant {letter.tenant_id}, "
                    f"{letter.attempts} attempts): {letter.last_error}"
                )
        finally:
            await store.close()
        return 0

    return asyncio.run(main())


def _shown(text: str, *, file: TextIO | None = None) -> None:
    """Print a line that may hold an adapter's or an agent's words (a tool's description, a server's error): without
    the escape sequences and control characters that would drive the terminal (bot/controls.py)."""
    print(without_controls(text), file=file if file is not None else sys.stdout)


def _import_codegen(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from adapters.browser_codegen import CodegenNotUnderstood, checked_config, recipe_from_codegen
    from planner.ports import AgentConfigInvalid

    try:
        source = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        imported = recipe_from_codegen(source, description=args.description)
        config = checked_config(imported, args.capability)
    except (OSError, UnicodeDecodeError, CodegenNotUnderstood, AgentConfigInvalid) as error:
        print(f"cos adapters import-codegen: {error}", file=sys.stderr)
        return 2
    for note in imported.notes:
        print(f"cos adapters import-codegen: {note}", file=sys.stderr)
    print(json.dumps(config, indent=2))
    return 0


def _dry_run_request(args: argparse.Namespace) -> DelegationRequest | None:
    """The request `cos adapters test --dry-run` rehearses, or None once what is wrong with its words is printed."""
    import json

    from planner.ports import DelegationRequest

    if not args.capability:
        print("cos adapters test: --dry-run needs --capability", file=sys.stderr)
        return None
    try:
        given = json.loads(args.input)
    except ValueError as error:
        print(f"cos adapters test: --input must be a JSON object ({error})", file=sys.stderr)
        return None
    return DelegationRequest(
        capability=args.capability, input=given if isinstance(given, dict) else {}, requested_by="cos adapters"
    )


async def _dry_run(agent: Agent, request: DelegationRequest, name: str) -> tuple[int, list[str]]:
    result = await agent.rehearse(request)
    lines = [result.output if result.error is None else f"{name}: {result.error}"]
    lines += [
        f"  kept {item.kind} ({item.media_type}, {len(item.content)} bytes): {item.description}"
        for item in result.evidence
    ]
    return (0 if result.error is None else 1), lines


NO_GRANT = "no grant for that person; sign in from Teams first"
"""`cos adapters test|tools|enable --as` for a person the adapter holds no usable grant of: the command line cannot
show a card."""

GIVE_AS = "acts as the person who delegates: give --as USER_ID to act as one"
"""Said of an adapter people sign in to when `cos adapters test|tools|enable` acts for nobody."""


class _GrantOnly:
    """The person `cos adapters test|tools|enable --as` acts for: an adapter that acts as each person uses their grant
    (refreshed if it must be); a sign-in is refused at once, as the command line has no chat to send its card to."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.asked = False

    async def sign_in(self, agent: str, authorization_url: str, *, timeout_seconds: float) -> dict[str, str]:
        from planner.ports import AgentTimeout

        self.asked = True
        raise AgentTimeout(agent, 0)


def _adapters(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from pathlib import Path

    from bot.delegating import Delegator
    from bot.http.oauth_callback import CALLBACK_PATH
    from bot.operations.delegation import tool_line
    from bot.text.errors import describe_plain
    from planner.domain.errors import PlannerError
    from planner.ports import AgentError
    from planner.services.registry import rotate_secrets
    from planner.store import Store, create_engine
    from planner.store.migrate import upgrade
    from planner.store.vault import VaultError

    if args.adapters_command == "import-codegen":
        return _import_codegen(args)
    config: dict[str, object] = {}
    if args.adapters_command == "register":
        try:
            raw = Path(args.config[1:]).read_text() if args.config.startswith("@") else args.config
            config = json.loads(raw)
        except (OSError, ValueError) as error:
            _shown(f"cos adapters: the configuration must be a JSON object, or @file.json ({error})", file=sys.stderr)
            return 2

    async def main() -> int:
        store = Store(create_engine(settings.database_url))
        try:
            await upgrade(store.engine)
            vault = await _open_vault(settings, store, "cos adapters")
        except BaseException:
            await store.close()
            raise
        if vault is None:
            await store.close()
            return 2
        # With the bot's public address an adapter people sign in to can be opened, to act as one of them (`--as`).
        callback = settings.public_url + CALLBACK_PATH if settings.public_url else ""
        delegator = Delegator(store, vault, limits=settings.adapter_limits, oauth_callback=callback)
        try:
            if args.adapters_command == "rotate-keys":
                count = await rotate_secrets(store, vault, actor="cos adapters rotate-keys")
                _shown(f"{count} adapter(s) re-encrypted with the newest key; older keys can now be removed")
                return 0
            registry = delegator.registry(args.tenant)
            if args.adapters_command == "list":
                listed = await registry.list_adapters()
                if not listed:
                    print(f"no adapters registered for tenant {args.tenant}")
                for entry in listed:
                    state = "enabled" if entry.enabled else "disabled"
                    settings_text = ", ".join(f"{k}={v}" for k, v in entry.describe().items())
                    _shown(f"{entry.key} ({state}): {settings_text}")
            elif args.adapters_command == "register":
                entry = await registry.register(args.kind, args.name, config, actor="cos adapters")
                secret = ", ".join(entry.sealed_fields) or "none"
                _shown(f"{entry.key} registered; secret fields kept encrypted: {secret}")
            elif args.adapters_command == "test" and args.dry_run:
                request = _dry_run_request(args)
                if request is None:
                    return 2

                async def rehearsed(entry: RegisteredAdapter) -> tuple[int, list[str]]:
                    return await _dry_run(await registry.open(entry), request, args.name)

                return await _as_person(args, store, vault, registry, rehearsed)
            elif args.adapters_command == "test":

                async def tested(entry: RegisteredAdapter) -> tuple[int, list[str]]:
                    agent = await registry.open(entry)
                    health = await agent.health()
                    lines = [
                        f"{args.name}: {'ok' if health.ok else 'NOT ok'} in {health.seconds:.2f} s: {health.detail}"
                    ]
                    if health.ok and registry.tools_need_enabling(agent.kind):
                        lines += [f"  {tool_line(tool)}" for tool in await registry.tools(args.name)]
                    elif health.ok:
                        capabilities = await agent.capabilities()
                        lines += [f"  can {capability.name}: {capability.description}" for capability in capabilities]
                    return (0 if health.ok else 1), lines

                return await _as_person(args, store, vault, registry, tested)
            elif args.adapters_command == "tools":

                async def tools_now(entry: RegisteredAdapter) -> tuple[int, list[str]]:
                    return 0, [tool_line(tool) for tool in await registry.tools(args.name)]

                return await _as_person(args, store, vault, registry, tools_now)
            elif args.adapters_command == "enable" and args.tool:

                async def enabled(entry: RegisteredAdapter) -> tuple[int, list[str]]:
                    tool = await registry.enable_tool(args.name, args.tool, actor="cos adapters")
                    marked = " (destructive: every delegation to it waits for an approval)" if tool.destructive else ""
                    return 0, [f"{tool.adapter} {tool.capability} enabled, its definition pinned{marked}"]

                return await _as_person(args, store, vault, registry, enabled)
            elif args.adapters_command == "enable" and args.as_user is not None:
                _shown(
                    "cos adapters enable: --as goes with a TOOL (enabling the whole adapter calls no agent)",
                    file=sys.stderr,
                )
                return 2
            elif args.adapters_command == "disable" and args.tool:
                was = await registry.disable_tool(args.name, args.tool, actor="cos adapters")
                _shown(f"{args.name} {args.tool} {'disabled' if was is not None else 'was off already'}")
            elif args.adapters_command in ("enable", "disable"):
                switch = registry.enable if args.adapters_command == "enable" else registry.disable
                entry = await switch(args.name, actor="cos adapters")
                _shown(f"{entry.key} {args.adapters_command}d")
            elif args.adapters_command == "classify":
                _, now = await registry.classify(args.name, args.capability, args.gates, actor="cos adapters")
                gates = ", ".join(c.value for c in now.categories) or "no gate of its own"
                _shown(f"{now.adapter} {now.capability} classified: {gates}")
            elif args.adapters_command == "remove":
                entry = await registry.remove(args.name, actor="cos adapters")
                _shown(f"{entry.key} removed")
        except (AgentError, PlannerError, VaultError, ValueError, OSError) as error:
            _shown(f"cos adapters: {describe_plain(error)}", file=sys.stderr)
            return 1
        finally:
            await delegator.close()
            await store.close()
        return 0

    return asyncio.run(main())


async def _as_person(
    args: argparse.Namespace,
    store: Store,
    vault: Vault,
    registry: Registry,
    work: Callable[[RegisteredAdapter], Awaitable[tuple[int, list[str]]]],
) -> int:
    """Run `work` on the adapter `args.name` (`cos adapters test`, `tools`, `enable NAME TOOL`) as the person `--as`
    names, print the lines it returns and return its exit code.

    An adapter people sign in to acts with the grant that person gave it signing in from Teams (refreshed if it must
    be); with none, or one that can no longer be refreshed, the command fails with NO_GRANT, as the command line has
    no chat to send a sign-in card to. Without `--as` such an adapter acts for nobody: the command says to give it.
    """
    import contextlib

    from bot.text.errors import describe_plain
    from planner.ports import AgentError, acting_for

    command = f"cos adapters {args.adapters_command}"
    entry = await registry.get(args.name)
    signs_in = entry.kind == "mcp" and entry.config.get("oauth_grant") == "authorization_code"
    person = _GrantOnly(args.as_user) if args.as_user is not None else None
    if person is not None and signs_in and not await _has_grant(store, vault, args, person.user_id):
        _shown(f"{command}: {NO_GRANT}", file=sys.stderr)
        return 1
    try:
        with acting_for(person) if person is not None else contextlib.nullcontext():
            code, lines = await work(entry)
    except AgentError as error:
        if person is not None and person.asked:
            code, lines = 1, []
        elif signs_in and person is None:
            _shown(f"{command}: {describe_plain(error)}", file=sys.stderr)
            _shown(f"  {args.name} {GIVE_AS}", file=sys.stderr)
            return 1
        else:
            raise
    if person is not None and person.asked:
        _shown(f"{command}: {NO_GRANT}", file=sys.stderr)
        return 1
    for line in lines:
        _shown(line)
    if signs_in and person is None:
        _shown(f"  {args.name} {GIVE_AS}")
    return code


async def _has_grant(store: Store, vault: Vault, args: argparse.Namespace, user_id: str) -> bool:
    """Whether the adapter keeps a grant `user_id` gave it (signing in from Teams)."""
    from planner.services.oauth import OAuthGrants

    return bool(user_id) and await OAuthGrants(store, args.tenant, args.name, vault).load(user_id) is not None


async def _open_vault(settings: Settings, store: Store, command: str) -> Vault | None:
    """The vault for a command that keeps or reads secrets, or None once the reason is printed. In local mode the key
    file is made here as `cos serve` makes it: only while the database holds nothing sealed with a lost key."""
    from bot.server import LocalKeyLost, prepare_local_key
    from bot.text.errors import describe_plain
    from planner.store.vault import VaultError

    try:
        await prepare_local_key(settings, store)
        vault = settings.vault()
    except (LocalKeyLost, VaultError) as error:
        print(f"{command}: {describe_plain(error)}", file=sys.stderr)
        return None
    if vault is None:
        print(f"{command}: set COS_SECRET_KEYS (see .env.example): secrets are kept encrypted", file=sys.stderr)
    return vault


def _decision_keys(settings: Settings) -> DecisionKeys | None:
    """The keys that sign the decision log; None in local mode until `cos serve` has made the key file (the log is
    kept unsigned until then). A malformed COS_SECRET_KEYS is an error (VaultError)."""
    from planner.store.vault import VaultError

    try:
        return settings.decision_keys()
    except VaultError:
        if settings.secret_keys:
            raise
        return None


def _decisions(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime
    from pathlib import Path
    from typing import Any

    from bot.text.decisions import break_text
    from bot.text.errors import describe_plain
    from planner.domain.decisions import ChainReport
    from planner.domain.errors import PlannerError
    from planner.services.decisions import DecisionLog, checkpoint, export, read_checkpoint, verify
    from planner.store import Store, create_engine
    from planner.store.migrate import upgrade
    from planner.store.vault import VaultError

    filters: dict[str, Any] = {}
    if args.decisions_command == "export":
        for name in ("since", "until"):
            value = getattr(args, name)
            try:
                at = datetime.fromisoformat(value) if value else None
            except ValueError:
                print(
                    f"cos decisions: --{name} {value!r} is not an ISO-8601 date or time, such as 2026-02-10 "
                    "or 2026-02-10T09:00:00+00:00",
                    file=sys.stderr,
                )
                return 2
            if at is not None:
                filters[name] = at if at.tzinfo else at.replace(tzinfo=UTC)
        if args.plan:
            plan = args.plan.strip().upper().lstrip("#").removeprefix("P").lstrip("#")
            if not plan.isdigit():
                print(f"cos decisions: --plan {args.plan!r} is not a plan id, such as P3", file=sys.stderr)
                return 2
            filters["plan"] = int(plan)
        filters |= {"agent": args.agent, "verdict": args.verdict}

    def described(chain: ChainReport) -> str:
        if chain.broken is not None:
            return (
                f"tenant {chain.tenant_id}: BROKEN at entry {chain.broken.seq}, {chain.broken.kind.value}: "
                f"{break_text(chain.broken)}"
            )
        text = f"tenant {chain.tenant_id}: {chain.entries} entries, intact (last entry {chain.head_seq}, hash "
        text += f"{chain.head_hash})"
        if chain.legacy:
            text += f"; {'entry 1 is' if chain.legacy == 1 else f'entries 1 to {chain.legacy} are'} legacy, unkeyed"
            text += f", vouched for by signed entry {chain.legacy + 1}" if chain.vouched else " (logged before the key)"
        if chain.checkpoint_seq is not None:
            text += f"; as the checkpoint saw it through entry {chain.checkpoint_seq}"
        return text

    async def main(out: TextIO) -> int:
        try:
            keys = _decision_keys(settings)
        except VaultError as error:
            print(f"cos decisions: {describe_plain(error)}", file=sys.stderr)
            return 2
        store = Store(create_engine(settings.database_url), decision_keys=keys)
        try:
            await upgrade(store.engine)
            if args.decisions_command == "verify":
                path = Path(args.checkpoints) if args.checkpoints else settings.decision_checkpoints_path
                untrusted = None
                try:
                    saved = read_checkpoint(path, keys)
                except PlannerError as error:  # CheckpointInvalid: still check the chains, and fail
                    saved, untrusted = None, error
                report = await verify(store, args.tenant, checkpoint=saved)
                if not report.chains:
                    print("no decisions logged yet" + (f" in tenant {args.tenant}" if args.tenant else ""))
                for chain in report.chains:
                    print(described(chain))
                if untrusted is not None:
                    print(f"cos decisions: {describe_plain(untrusted)}", file=sys.stderr)
                elif saved is None and report.chains:
                    print(
                        f"no checkpoint at {path} yet: a log cut short at its end, or a tenant's log removed whole, "
                        "shows only against one (`cos serve` writes it; `cos decisions checkpoint` too)"
                    )
                return 0 if report.ok and untrusted is None else 1
            if args.decisions_command == "checkpoint":
                path = Path(args.out) if args.out else settings.decision_checkpoints_path
                saved = await checkpoint(store, path)
                print(f"checkpoint {path} as of {saved.written_at.isoformat()}: {len(saved.heads)} tenant(s)")
                for tenant, head in sorted(saved.heads.items()):
                    print(f"tenant {tenant}: {head.count} entries, last entry {head.seq}, hash {head.hash}")
                return 0
            count = await export(DecisionLog(store, args.tenant).stream(**filters), out, args.format)
            print(f"cos decisions: {count} decision(s) exported", file=sys.stderr)
        except (PlannerError, OSError) as error:
            print(f"cos decisions: {describe_plain(error)}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        return 0

    if args.decisions_command == "export" and args.out:
        with Path(args.out).open("w", encoding="utf-8", newline="") as out:
            return asyncio.run(main(out))
    return asyncio.run(main(sys.stdout))


def _policy(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from bot.text.policy import rule_text
    from bot.text.problems import describe_problem
    from planner.domain.policy import PolicyInvalid
    from planner.services.policy import PolicySets
    from planner.store import Store, create_engine
    from planner.store.migrate import upgrade

    text = ""
    if args.policy_command == "load":
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"cos policy: cannot read {args.file}: {error}", file=sys.stderr)
            return 2

    async def main() -> int:
        store = Store(create_engine(settings.database_url))
        try:
            await upgrade(store.engine)
            sets = PolicySets(store, args.tenant)
            if args.policy_command == "load":
                try:
                    loaded = await sets.load(text, actor="cos policy load")
                except PolicyInvalid as error:
                    print(f"cos policy: {args.file} was not loaded, {len(error.problems)} problem(s):", file=sys.stderr)
                    for problem in error.problems:
                        print(f"  {describe_problem(problem)}", file=sys.stderr)
                    return 2
                print(f"policy version {loaded.version} in force for tenant {args.tenant}: {len(loaded.rules)} rule(s)")
                return 0
            active = await sets.active()
            if active is None:
                print(f"no policy rules loaded for tenant {args.tenant}")
                return 0
            if args.source:
                print(active.source)
                return 0
            print(
                f"policy version {active.version} for tenant {args.tenant}: {len(active.rules)} rule(s), "
                f"loaded by {active.loaded_by} at {active.loaded_at.isoformat()}"
            )
            for rule in active.rules:
                print(f"- {rule_text(rule)}")
        finally:
            await store.close()
        return 0

    return asyncio.run(main())


def _context(args: argparse.Namespace, settings: Settings) -> int:
    from bot.text.errors import describe_plain
    from planner.domain.errors import PlannerError
    from planner.services.context import ContextSources, reseal_source_secrets
    from planner.store import Store, create_engine
    from planner.store.migrate import upgrade
    from planner.store.vault import VaultError

    async def main() -> int:
        store = Store(create_engine(settings.database_url))
        try:
            await upgrade(store.engine)
            vault = await _open_vault(settings, store, "cos context")
            if vault is None:
                return 2
            if args.context_command == "rotate-keys":
                count = await reseal_source_secrets(store, vault)
                print(f"{count} source secret(s) re-encrypted with the newest key")
                return 0
            sources = ContextSources(store, args.tenant, vault)
            if args.context_command == "list-sources":
                listed = await sources.list_sources()
                if not listed:
                    print(f"no context sources registered for tenant {args.tenant}")
                for source in listed:
                    rotated = f", secret rotated {source.rotated_at.isoformat()}" if source.rotated_at else ""
                    print(f"{source.name}: added by {source.created_by} at {source.created_at.isoformat()}{rotated}")
            elif args.context_command in ("add-source", "rotate-source"):
                if args.context_command == "add-source":
                    secret = await sources.add(args.name, actor="cos context")
                    done = "added"
                else:
                    secret = await sources.rotate(args.name, actor="cos context")
                    done = "has a new secret (the old one no longer works)"
                print(
                    f"source {args.name.strip().lower()} {done} for tenant {args.tenant}. Its secret, shown only once:"
                )
                print(secret)
                print(
                    "Sign each POST /api/context/events body with it: X-COS-Signature: sha256=<hex HMAC-SHA256 of the "
                    f"body>, with X-COS-Source: {args.name.strip().lower()} and X-COS-Tenant: {args.tenant}."
                )
            elif args.context_command == "remove-source":
                removed = await sources.remove(args.name, actor="cos context")
                print(f"source {removed.name} removed; its facts stay until they expire")
        except (PlannerError, VaultError) as error:
            print(f"cos context: {describe_plain(error)}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        return 0

    return asyncio.run(main())


def _metrics(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from datetime import date

    from bot.charts import ChartLinks, signing_keys
    from bot.delegating import Delegator
    from bot.scheduler import pull_metric_feeds
    from bot.text.errors import describe_plain
    from planner.domain.errors import PlannerError
    from planner.services.ingestion import MetricFeeds
    from planner.services.plans import Plans
    from planner.store import Store, create_engine
    from planner.store.migrate import upgrade
    from planner.store.vault import VaultError

    async def main() -> int:
        store = Store(create_engine(settings.database_url), decision_keys=_decision_keys(settings))
        try:
            await upgrade(store.engine)
            if args.metrics_command == "chart-link":
                links = ChartLinks(signing_keys(settings), base_url=args.base_url)
                if not links.keys:
                    _shown(
                        "cos metrics: set COS_SECRET_KEYS (see .env.example): links are signed with it", file=sys.stderr
                    )
                    return 2
                await Plans(store, args.tenant).get_plan(args.plan)
                as_of = date.fromisoformat(args.as_of) if args.as_of else store.clock().date()
                _shown(links.link(args.tenant, args.plan, as_of, now=store.clock()))
                return 0
            if args.metrics_command == "pull":
                vault = await _open_vault(settings, store, "cos metrics")
                if vault is None:
                    return 2
                delegator = Delegator(store, vault, limits=settings.adapter_limits)
                try:
                    stored, failed = await pull_metric_feeds(store, delegator, store.clock())
                finally:
                    await delegator.close()
                _shown(f"{stored} reading(s) stored, {failed} feed(s) failed")
                return 1 if failed else 0
            feeds = MetricFeeds(store, args.tenant, explain=describe_plain)
            if args.metrics_command == "add-feed":
                metric = await Plans(store, args.tenant).find_metric(args.metric, plan_id=args.plan)
                feed = await feeds.add(
                    metric,
                    adapter=args.adapter,
                    capability=args.capability,
                    field=args.field,
                    unit=args.unit,
                    input=json.loads(args.input),
                    every_minutes=args.every,
                    spend=args.spend,
                    actor="cos metrics",
                )
                _shown(
                    f"feed {feed.id}: {metric.name} from {feed.adapter} {feed.capability} .{feed.field}, "
                    f"every {feed.every_minutes} min"
                    + (", its rises recorded as the plan's spend" if feed.spend else "")
                )
            elif args.metrics_command == "remove-feed":
                await feeds.remove(args.feed, actor="cos metrics")
                _shown(f"feed {args.feed} removed")
            else:
                listed = await feeds.list_feeds()
                if not listed:
                    _shown(f"no metric feeds for tenant {args.tenant}")
                for feed in listed:
                    pulled = feed.last_pulled_at.isoformat() if feed.last_pulled_at else "never"
                    state = f"failed: {feed.last_error}" if feed.last_error else "ok"
                    _shown(
                        f"feed {feed.id}: metric {feed.metric_id} from {feed.adapter} {feed.capability} "
                        f".{feed.field} ({feed.unit or 'no unit'}{', spend to date' if feed.spend else ''}), "
                        f"every {feed.every_minutes} min; "
                        f"last pulled {pulled}, {state}"
                    )
        except json.JSONDecodeError as error:
            _shown(f"cos metrics: --input is not JSON: {error}", file=sys.stderr)
            return 2
        except (PlannerError, VaultError, ValueError) as error:
            _shown(f"cos metrics: {describe_plain(error)}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        return 0

    return asyncio.run(main())


CREATES_THE_DATABASE = {("serve", None), ("db", "upgrade")}
NEEDS_NO_DATABASE = {"manifest", "where"}


def _missing_database(args: argparse.Namespace, settings: Settings) -> str | None:
    """Why this command must not run: it would use a SQLite file that is not there (and quietly make an empty one)."""
    path = settings.database_file
    if path is None or path.exists() or args.command in NEEDS_NO_DATABASE:
        return None
    if args.command == "adapters" and getattr(args, "adapters_command", None) == "import-codegen":
        return None  # reads a recording and prints a recipe: no database
    if (args.command, getattr(args, "db_command", None)) in CREATES_THE_DATABASE:
        return None
    where = "DATABASE_URL" if os.environ.get("DATABASE_URL", "").strip() else "the default, DATABASE_URL is not set"
    reason = (
        f"there is no database at {path} ({where}). `cos serve` makes it on its first start (`cos db upgrade` "
        "without serving); if you meant another database, set DATABASE_URL or COS_DATA_DIR (`cos where` shows what "
        "every command uses)."
    )
    old = Path.cwd() / DATABASE_FILE
    if old.exists() and old != path:
        reason += (
            f" This folder holds {old}, where earlier releases kept the database by default: move it (and "
            f"chief_of_staff.key beside it) to {path.parent}, or set DATABASE_URL to it."
        )
    return reason


def _where(args: argparse.Namespace, settings: Settings) -> int:
    """Print the files and the database every command of this installation uses."""
    path = settings.database_file
    state = "" if path is None else (" (exists)" if path.exists() else " (not made yet: `cos serve` makes it)")
    key = Path(settings.secret_key_file)
    lines = [
        f"settings file: {args.env_file or 'none (no .env found; the environment only)'}",
        f"data folder:   {settings.data_dir}",
        f"database:      {settings.database_shown}{state}",
    ]
    if settings.needs_local_key:
        lines.append(f"secret key:    {key} ({'exists' if key.exists() else 'not made yet: `cos serve` makes it'})")
    else:
        lines.append("secret key:    COS_SECRET_KEYS" if settings.secret_keys else "secret key:    none (production)")
    lines.append(f"checkpoint:    {settings.decision_checkpoints_path}")
    mode = "local mode (no MICROSOFT_APP_ID)" if settings.local_mode else f"Azure Bot {settings.app_id}"
    lines.append(f"mode:          {mode}, listening on {settings.host}:{settings.port}")
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cos", description="Chief of Staff: the AI chief of staff in Teams.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the bot (migrates the database first)")
    serve.add_argument("--host", help="address to listen on (default COS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default COS_PORT or 3978)")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow listening beyond loopback without Azure Bot credentials. UNSAFE: nothing is authenticated, so "
        "anyone who can reach the port can act as any user of any tenant, and as an admin too when any is "
        "configured (COS_ADMINS, --local-admin); an admin can register a stdio adapter, which runs a command",
    )
    serve.add_argument(
        "--local-admin",
        metavar="USER_ID",
        help="local mode only: make this user id an admin (COS_LOCAL_ADMIN); without it, or COS_ADMINS, nobody is. "
        "The bot tells a user their id when it refuses them an admin command",
    )
    serve.set_defaults(handler=_serve)

    where = commands.add_parser(
        "where", help="which settings file, database, key file and checkpoint every `cos` command uses"
    )
    where.set_defaults(handler=_where)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply the migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    db_commands.add_parser("current", help="print the revision the database is at")
    db.set_defaults(handler=_db)

    tick_command = commands.add_parser(
        "tick",
        help="evaluate the triggers and deliver due messages once, now; with --at, say what it would do then",
    )
    tick_command.add_argument(
        "--at",
        help="as of this ISO-8601 time instead of now: only says what the tick would fire, queue, send and expire "
        "(on a copy of the database), unless --apply",
    )
    tick_command.add_argument(
        "--apply", action="store_true", help="with --at: really do it as of that time (sends to Teams)"
    )
    tick_command.set_defaults(handler=_tick)

    outbox_command = commands.add_parser("outbox", help="the outbox: counts, dead letters, replay")
    outbox_command.add_argument("--tenant", help="only this Teams tenant")
    outbox_command.add_argument("--limit", type=int, default=50, help="dead letters to list (default 50)")
    outbox_command.add_argument("--replay", type=int, nargs="+", metavar="ID", help="put these dead letters back")
    outbox_command.set_defaults(handler=_outbox)

    adapters = commands.add_parser("adapters", help="agent adapters of a tenant: list, register, test, remove")
    adapter_commands = adapters.add_subparsers(dest="adapters_command", required=True, metavar="ADAPTERS_COMMAND")
    for name, help_text in (
        ("list", "the tenant's adapters (secrets shown only as set)"),
        ("register", "register an adapter: KIND NAME CONFIG (JSON, or @file.json)"),
        ("test", "check that an adapter answers, and what it can do"),
        ("tools", "an MCP adapter's tools as its server defines them, on, off or held"),
        ("enable", "let an adapter take delegations again; with TOOL, enable that tool (its definition pinned)"),
        ("disable", "stop an adapter taking delegations; with TOOL, switch that tool off"),
        ("remove", "remove an adapter and its secrets"),
        ("classify", "classify a capability under approval gates: NAME CAPABILITY GATE… (or none)"),
    ):
        command = adapter_commands.add_parser(name, help=help_text)
        command.add_argument("--tenant", required=True, help="the Teams tenant id")
        if name == "register":
            command.add_argument("kind", choices=("mcp", "a2a", "browser"))
        if name != "list":
            command.add_argument("name")
        if name == "register":
            command.add_argument("config", help="the configuration as JSON, or @path to a JSON file")
        if name in ("enable", "disable"):
            command.add_argument("tool", nargs="?", help="one tool of an MCP adapter, rather than the whole adapter")
        if name in ("test", "tools", "enable"):
            command.add_argument(
                "--as",
                dest="as_user",
                metavar="USER_ID",
                help="act as this person (their Teams user id): an adapter people sign in to uses the grant they gave "
                "it when signing in from Teams (none: the command fails, saying so)"
                + ("; only with TOOL" if name == "enable" else ""),
            )
        if name == "test":
            command.add_argument("--capability", help="with --dry-run: the capability to try")
            command.add_argument("--input", default="{}", help="with --dry-run: the capability's input, as JSON")
            command.add_argument(
                "--dry-run", action="store_true", help="run the capability up to its first step that changes anything"
            )
        if name == "classify":
            command.add_argument("capability", help="an MCP tool, an A2A skill or a browser recipe's capability")
            gates = "strategy, audience, budget, regulated_claim, brand_creative, personal_data; or none"
            command.add_argument("gates", nargs="+", metavar="GATE", help=gates)
    adapter_commands.add_parser("rotate-keys", help="re-encrypt every stored secret with the newest key")
    codegen = adapter_commands.add_parser(
        "import-codegen", help="a browser recipe from `playwright codegen --target python` output, printed as JSON"
    )
    codegen.add_argument("file", help="the recorded script (- for standard input)")
    codegen.add_argument("--capability", required=True, help="the capability the recipe does, like create_workflow")
    codegen.add_argument("--description", default="", help="what the capability does, in a sentence")
    adapters.set_defaults(handler=_adapters)

    decisions_parser = commands.add_parser(
        "decisions", help="the decision log: verify its signed chains, checkpoint their heads, export it"
    )
    decision_commands = decisions_parser.add_subparsers(
        dest="decisions_command", required=True, metavar="DECISIONS_COMMAND"
    )
    verify_command = decision_commands.add_parser(
        "verify",
        help="check every signed chain against the checkpoint; exit 1, naming the tenant and the first broken entry, "
        "if one was edited, deleted or reordered",
    )
    verify_command.add_argument("--tenant", help="only this Teams tenant")
    verify_command.add_argument(
        "--checkpoints", help="the checkpoint file (default COS_DECISION_CHECKPOINTS, or next to the key file)"
    )
    checkpoint_command = decision_commands.add_parser(
        "checkpoint", help="write each tenant's chain head, signed, to a file outside the database"
    )
    checkpoint_command.add_argument(
        "--out", help="the checkpoint file (default COS_DECISION_CHECKPOINTS, or next to the key file)"
    )
    export_command = decision_commands.add_parser("export", help="write a tenant's decisions as JSON lines or CSV")
    export_command.add_argument("--tenant", required=True, help="the Teams tenant id")
    export_command.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default jsonl")
    export_command.add_argument("--since", help="from this ISO-8601 date or time (UTC unless it says)")
    export_command.add_argument("--until", help="before this ISO-8601 date or time (not included)")
    export_command.add_argument("--agent", help="only decisions concerning this agent (adapter name)")
    export_command.add_argument("--plan", help="only decisions about this plan, its sub-plans and their tasks (P3)")
    export_command.add_argument("--verdict", help="only this verdict: go, flag, stop, approved, rejected…")
    export_command.add_argument("--out", help="write to this file instead of standard output")
    decisions_parser.set_defaults(handler=_decisions)

    policy_parser = commands.add_parser("policy", help="a tenant's policy rules: load a new set, show the one in force")
    policy_commands = policy_parser.add_subparsers(dest="policy_command", required=True, metavar="POLICY_COMMAND")
    load_command = policy_commands.add_parser("load", help="check a YAML or JSON rule document and put it in force")
    load_command.add_argument("file", help="the rule document (YAML or JSON), or - for standard input")
    load_command.add_argument("--tenant", required=True, help="the Teams tenant id")
    show_command = policy_commands.add_parser("show", help="the rules in force")
    show_command.add_argument("--tenant", required=True, help="the Teams tenant id")
    show_command.add_argument("--source", action="store_true", help="print the document as it was loaded")
    policy_parser.set_defaults(handler=_policy)

    context_parser = commands.add_parser("context", help="shared context: the systems that may post facts")
    context_commands = context_parser.add_subparsers(dest="context_command", required=True, metavar="CONTEXT_COMMAND")
    for name, help_text in (
        ("add-source", "register a source; prints its new secret once"),
        ("rotate-source", "give a source a new secret (printed once); the old one stops working"),
        ("remove-source", "forget a source and its secret"),
        ("list-sources", "the tenant's sources (never their secrets)"),
    ):
        command = context_commands.add_parser(name, help=help_text)
        if name != "list-sources":
            command.add_argument("name")
        command.add_argument("--tenant", required=True, help="the Teams tenant id")
    context_commands.add_parser("rotate-keys", help="re-encrypt every source secret with the newest key")
    context_parser.set_defaults(handler=_context)

    metrics_parser = commands.add_parser("metrics", help="KPI readings pulled from agents, and signed chart links")
    metrics_commands = metrics_parser.add_subparsers(dest="metrics_command", required=True, metavar="METRICS_COMMAND")
    add_feed = metrics_commands.add_parser("add-feed", help="pull a KPI from an agent's capability on a schedule")
    add_feed.add_argument("metric", help="the KPI's name")
    add_feed.add_argument("--tenant", required=True, help="the Teams tenant id")
    add_feed.add_argument("--plan", type=int, help="the plan id, when several plans track that name")
    add_feed.add_argument("--adapter", required=True, help="the registered adapter's name")
    add_feed.add_argument("--capability", required=True, help="e.g. get_campaign_metrics")
    add_feed.add_argument("--input", default="{}", help="the capability's input, as JSON")
    add_feed.add_argument("--field", required=True, help="the field of its data holding the value (a.b for nested)")
    add_feed.add_argument("--unit", default="", help="the unit of that field; must be the KPI's")
    add_feed.add_argument("--every", type=int, default=60, help="minutes between pulls (default 60)")
    add_feed.add_argument(
        "--spend",
        action="store_true",
        help="the field is the plan's spend to date in its budget's currency (the KPI's unit): each rise is spend",
    )
    feeds_command = metrics_commands.add_parser("feeds", help="the tenant's feeds and how their last pull went")
    feeds_command.add_argument("--tenant", required=True, help="the Teams tenant id")
    remove_feed = metrics_commands.add_parser("remove-feed", help="stop pulling a feed")
    remove_feed.add_argument("feed", type=int)
    remove_feed.add_argument("--tenant", required=True, help="the Teams tenant id")
    metrics_commands.add_parser("pull", help="pull every due feed of every tenant now (the tick does it too)")
    chart_link = metrics_commands.add_parser("chart-link", help="a signed link to a plan's chart, valid 7 days")
    chart_link.add_argument("plan", type=int)
    chart_link.add_argument("--tenant", required=True, help="the Teams tenant id")
    chart_link.add_argument("--base-url", required=True, help="the bot's public address, e.g. https://bot.example.com")
    chart_link.add_argument("--as-of", help="the day the chart shows (default today)")
    metrics_parser.set_defaults(handler=_metrics)

    add_manifest_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cos` console script."""
    # The `.env` of the project holding this code, whatever folder the command runs from (python-dotenv looks
    # upwards from the calling module's folder); COS_ENV_FILE names another.
    env_file = os.environ.get("COS_ENV_FILE", "").strip() or find_dotenv()
    if env_file:
        load_dotenv(env_file)
    args = build_parser().parse_args(argv)
    args.env_file = env_file
    try:
        # Building the app package needs only the app id, not the secrets that serving needs.
        settings = Settings.from_env(strict=args.command != "manifest")
    except SettingsError as error:
        print(f"cos: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    missing = _missing_database(args, settings)
    if missing is not None:
        print(f"cos {args.command}: {missing}", file=sys.stderr)
        return 1
    if args.command not in NEEDS_NO_DATABASE:
        logger.info("database: %s", settings.database_shown)
    return int(args.handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
