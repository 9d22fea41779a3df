"""Policy and shared context for admins: `cos policy`, `cos context` from a shell, `policy` in Teams."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from bot.cards.markdown import WORD_JOINER
from bot.cli import main
from bot.grammar import GrammarError, parse
from bot.operations import Caller, Context, Reply, default_registry
from planner.services.context import ContextSources, sign
from planner.services.policy import PolicySets
from planner.services.tenants import Tenants
from planner.store import Store
from planner.store.vault import Vault
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.conftest import FakeClock

TENANT = "contoso"
RULES_YAML = """
# What HubSpot may do on its own.
rules:
  - id: hubspot-discounts
    description: HubSpot may offer discounts up to 15 % on its own; more needs a person.
    effect: allow
    agents: [hubspot]
    limits:
      discount: {le: 15}
  - id: outbound-after-ticket
    description: No outbound while the customer had a support ticket opened in the last 48 h.
    effect: forbid
    when:
      fact: ticket_opened
      within: 48h
"""


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A database and a secret key for the `cos` command; the key."""
    key = Vault.generate_key()
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COS_SECRET_KEYS", key)
    assert main(["db", "upgrade"]) == 0
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    return key


def test_cos_policy_load_puts_a_yaml_file_in_force_and_show_prints_it(
    shell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML)
    assert main(["policy", "show", "--tenant", TENANT]) == 0
    assert "no policy rules loaded for tenant contoso" in capsys.readouterr().out
    assert main(["policy", "load", str(rules), "--tenant", TENANT]) == 0
    assert "policy version 1 in force for tenant contoso: 2 rule(s)" in capsys.readouterr().out
    assert main(["policy", "load", str(rules), "--tenant", TENANT]) == 0
    assert "policy version 2 in force" in capsys.readouterr().out
    assert main(["policy", "show", "--tenant", TENANT]) == 0
    shown = capsys.readouterr().out
    assert "policy version 2 for tenant contoso: 2 rule(s), loaded by cos policy load" in shown
    assert "- hubspot-discounts (allow: go within discount ≤ 15, else flag; agents hubspot; kinds all)" in shown
    assert main(["policy", "show", "--tenant", TENANT, "--source"]) == 0
    assert capsys.readouterr().out.strip() == RULES_YAML.strip()


def test_cos_policy_load_prints_every_problem_and_exits_2(
    shell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.replace("within: 48h", "within: two days").replace("effect: allow", "effect: alow"))
    assert main(["policy", "load", str(rules), "--tenant", TENANT]) == 2
    err = capsys.readouterr().err
    assert f"cos policy: {rules} was not loaded, 2 problem(s):" in err
    assert "  rules[0].effect: \"alow\" is not an effect (did you mean 'allow'?)" in err
    assert '  rules[1].when.within: "two days" is not a duration like 48h' in err
    assert main(["policy", "show", "--tenant", TENANT]) == 0
    assert "no policy rules loaded" in capsys.readouterr().out
    assert main(["policy", "load", str(tmp_path / "missing.yaml"), "--tenant", TENANT]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cos_context_add_source_prints_its_secret_once_and_never_again(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["context", "add-source", "HelpDesk", "--tenant", TENANT]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "source helpdesk added for tenant contoso. Its secret, shown only once:"
    secret = out[1]
    assert len(secret) >= 40
    assert "X-COS-Source: helpdesk and X-COS-Tenant: contoso" in out[2]
    assert main(["context", "list-sources", "--tenant", TENANT]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("helpdesk: added by cos context at ")
    assert secret not in listed
    assert main(["context", "add-source", "helpdesk", "--tenant", TENANT]) == 1
    assert "already registered" in capsys.readouterr().err
    assert main(["context", "rotate-source", "helpdesk", "--tenant", TENANT]) == 0
    rotated = capsys.readouterr().out.splitlines()[1]
    assert rotated != secret
    assert main(["context", "rotate-keys"]) == 0
    assert "1 source secret(s) re-encrypted" in capsys.readouterr().out
    assert main(["context", "remove-source", "helpdesc", "--tenant", TENANT]) == 1
    assert "Did you mean 'helpdesk'?" in capsys.readouterr().err
    assert main(["context", "remove-source", "helpdesk", "--tenant", TENANT]) == 0
    assert "source helpdesk removed" in capsys.readouterr().out
    assert main(["context", "list-sources", "--tenant", TENANT]) == 0
    assert "no context sources registered" in capsys.readouterr().out


def test_a_secret_from_the_shell_signs_what_the_bot_accepts(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["context", "add-source", "crm", "--tenant", TENANT]) == 0
    secret = capsys.readouterr().out.splitlines()[1]

    async def check() -> bool:
        store = Store.from_url(os.environ["DATABASE_URL"])
        try:
            return await ContextSources(store, TENANT, Vault([shell])).verify("crm", b"{}", sign(secret, b"{}"))
        finally:
            await store.close()

    assert asyncio.run(check())


def test_cos_context_without_a_key_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MICROSOFT_APP_ID", "app")
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "pw")
    assert main(["db", "upgrade"]) == 0
    monkeypatch.delenv("COS_SECRET_KEYS", raising=False)
    assert main(["context", "add-source", "crm", "--tenant", TENANT]) == 2
    assert "set COS_SECRET_KEYS" in capsys.readouterr().err


# ---- in Teams ------------------------------------------------------------------------------------------------------


async def run(store: Store, clock: FakeClock, text: str, *, admin: bool = True) -> Reply:
    command = parse(text)
    caller = Caller(tenant_id=TENANT, user_id="aad-admin" if admin else "aad-writer", name="Admin", is_admin=admin)
    return await default_registry().run(command.operation, Context(Tenants(store), caller, clock=clock), command.args)


async def test_admins_see_the_rules_in_force_as_a_card(store: Store, clock: FakeClock) -> None:
    empty = await run(store, clock, "policy")
    assert "No policy rules are loaded" in empty.text
    await PolicySets(store, TENANT).load(RULES_YAML, actor="aad-admin")
    shown = await run(store, clock, "policy")
    [card] = shown.cards
    assert schema_errors(card) == []
    text = all_text(card)
    assert "Policy rules, version 1" in text
    assert "2 rule(s), loaded by aad-admin" in text
    assert "HubSpot may offer discounts up to 15 %" in text
    assert "ticket_opened within 2d" in text


async def test_admins_load_rules_as_json_in_teams_and_every_problem_is_listed(store: Store, clock: FakeClock) -> None:
    document = {
        "rules": [
            {
                "id": "no-discounts",
                "description": "No agent offers discounts this quarter.",
                "effect": "forbid",
                "actions": ["offer_discount"],
            }
        ]
    }
    # As a phone keyboard types it: typographic quotes.
    typed = "policy load " + json.dumps(document).replace('"', "\u201c", 1)
    loaded = await run(store, clock, typed)
    assert loaded.ok
    assert loaded.text.startswith("Policy version 1 is in force: 1 rule(s).")
    bad = await run(store, clock, 'policy load {"rules": [{"id": "x", "effect": "forbid", "when": {"within": "2h"}}]}')
    assert not bad.ok
    shown = bad.text.replace(WORD_JOINER, "")  # the problems quote the document: shown as text
    assert "rules[0].description: missing" in shown
    assert "rules[0].when.fact: missing" in shown
    active = await PolicySets(store, TENANT).active()
    assert active is not None
    assert active.version == 1


async def test_only_admins_see_or_load_the_rules(store: Store, clock: FakeClock) -> None:
    for text in ("policy", 'policy load {"rules": []}'):
        refused = await run(store, clock, text, admin=False)
        assert not refused.ok
        assert "COS_ADMINS" in refused.text
    assert await PolicySets(store, TENANT).active() is None


def test_the_grammar_reads_policy_commands() -> None:
    assert parse("policy").operation == "show_policy"
    assert parse("policy show").operation == "show_policy"
    assert parse('policy load {"rules": []}').args == {"document": '{"rules": []}'}
    with pytest.raises(GrammarError) as unclear:
        parse("policy drop everything")
    assert unclear.value.operation == "load_policy"
    tools = {op.name for op in default_registry() if not op.admin_only and not op.human_only}
    assert "load_policy" not in tools
    assert "show_policy" not in tools


def test_a_rule_reads_in_one_line_what_it_answers_to_what_and_when() -> None:
    from bot.text.policy import rule_text
    from planner.services.policy import parse_policy

    rules = parse_policy(
        """
rules:
  - id: hubspot-discounts
    description: HubSpot may offer discounts up to 15 % on its own.
    effect: allow
    agents: [hubspot]
    kinds: [delegation]
    actions: [offer_discount]
    limits: {discount: {le: 15}, channel: {in: [email, sms]}}
  - id: outbound-after-ticket
    description: No outbound while a ticket is open.
    effect: forbid
    gates: [budget]
    when:
      attributes: {direction: outbound}
      facts: [{type: ticket_opened, within: 48h, match: {severity: high}}, {type: renewal_open, absent: true}]
"""
    )
    assert [rule_text(rule) for rule in rules] == [
        'hubspot-discounts (allow: go within discount ≤ 15, channel in ["email", "sms"], else flag; agents '
        "hubspot; kinds delegation; actions offer_discount): HubSpot may offer discounts up to 15 % on its own.",
        "outbound-after-ticket (forbid: stop (gates budget); agents all; kinds all; when direction = outbound and "
        "ticket_opened within 2d where severity = high and no renewal_open): No outbound while a ticket is open.",
    ]
