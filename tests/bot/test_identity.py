"""`whoami`: a person finds the id an admin puts in COS_ADMINS, in Teams, without asking anyone."""

from __future__ import annotations

from bot.grammar import Command, parse
from tests.bot.conftest import LOCAL_ADMIN, TENANT, TeamsUser


def test_whoami_is_a_command_word() -> None:
    assert parse("whoami") == Command("whoami")
    assert parse("Who am I?") == Command("whoami")


async def test_whoami_shows_the_id_an_admin_lists_the_name_the_tenant_and_not_an_admin(lead: TeamsUser) -> None:
    writer = TeamsUser(lead.running, user_id="aad-writer", name="Writer One", conversation_id="a:personal-writer")
    [reply] = await writer.ask("whoami")
    assert reply.startswith("You are Writer One.")
    assert "- User id: `aad-writer`: the id an admin lists in COS_ADMINS" in reply
    assert f"- Tenant: `{TENANT}`" in reply
    assert "- Admin of this bot: no. An admin makes you one by adding your user id to COS_ADMINS" in reply


async def test_whoami_tells_an_admin_they_are_one_and_shows_a_hostile_name_as_text(lead: TeamsUser) -> None:
    admin = TeamsUser(lead.running, user_id=LOCAL_ADMIN, name="[Approve](https://evil.example) **boss**")
    assert lead.user_id == LOCAL_ADMIN  # `cos serve --local-admin` named them
    [reply] = await admin.ask("whoami")
    assert "- Admin of this bot: yes" in reply
    assert "[Approve](https://evil.example)" not in reply
    assert "**boss**" not in reply
    assert f"`{LOCAL_ADMIN}`" in reply


async def test_help_lists_whoami(lead: TeamsUser) -> None:
    [reply] = await lead.ask("help")
    assert "`whoami`: your user id (what an admin lists in COS_ADMINS)" in reply
    [one] = await lead.ask("help whoami")
    assert "Show your Teams user id" in one
