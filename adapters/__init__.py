"""Vendor agent adapters, implementing the agent interface the planner declares: one module per kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.egress import ALLOWED_NETWORKS_SETTING, Egress, parse_networks
from adapters.stdio_commands import COMMANDS_FILE_SETTING, COMMANDS_SETTING, StdioCommands, StdioCommandsInvalid
from planner.ports import Sampler
from planner.services.oauth import OAuthGrants
from planner.services.registry import AdapterFactory, AdapterSessionStore
from planner.store import Store
from planner.store.vault import Vault

if TYPE_CHECKING:
    from adapters.a2a import A2APush

CHROMIUM_PATH_SETTING = "COS_CHROMIUM_PATH"


class AdapterSettingInvalid(ValueError):
    """An operator's adapter setting cannot be used: which one, its value, what was expected."""

    def __init__(self, setting: str, value: str, expected: str) -> None:
        self.setting = setting
        self.value = value
        self.expected = expected
        super().__init__(f"{setting}={value!r} is not valid: expected {expected}.")


@dataclass(frozen=True, kw_only=True)
class AdapterLimits:
    """What the operator lets adapters do on the host and the network: set in the environment, never from chat.

    The defaults are the strict ones: public addresses only, no stdio command, the system's Chromium.
    """

    egress: Egress = field(default_factory=Egress)
    stdio_commands: StdioCommands = field(default_factory=StdioCommands)
    chromium_path: str | None = None
    """The Chromium the browser adapter runs; None: Debian's /usr/bin/chromium, else the one on the PATH."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdapterLimits:
        """The limits of `COS_ADAPTER_ALLOWED_NETWORKS`, `COS_STDIO_COMMANDS(_FILE)` and `COS_CHROMIUM_PATH`.

        Raises:
            AdapterSettingInvalid: naming the setting and what it should be.
        """
        networks = env.get(ALLOWED_NETWORKS_SETTING, "")
        try:
            egress = Egress(parse_networks(networks))
        except ValueError as error:
            expected = f"networks like 10.20.0.0/16 ({error})"
            raise AdapterSettingInvalid(ALLOWED_NETWORKS_SETTING, networks, expected) from None
        try:
            commands = StdioCommands.from_settings(
                env.get(COMMANDS_SETTING, ""), file=env.get(COMMANDS_FILE_SETTING, "")
            )
        except StdioCommandsInvalid as error:
            value = env.get(error.setting, "")
            raise AdapterSettingInvalid(
                error.setting, value[:80], f"stdio commands as the README shows ({error.problem})"
            ) from None
        return cls(
            egress=egress, stdio_commands=commands, chromium_path=env.get(CHROMIUM_PATH_SETTING, "").strip() or None
        )


def adapter_kinds(
    store: Store,
    tenant_id: str,
    vault: Vault,
    *,
    limits: AdapterLimits | None = None,
    a2a_push: A2APush | None = None,
    sampler: Sampler | None = None,
    oauth_callback: str = "",
) -> dict[str, AdapterFactory]:
    """Every kind of adapter, for one tenant's registry (a browser agent keeps its session beside its adapter, an MCP
    agent the grants people gave it, both sealed), within the operator's `limits` (by default the strict ones);
    `a2a_push`: where A2A agents may post task updates; `sampler`: the bot's model behind the tenant's gate, lent to
    MCP servers that ask (None: sampling is off); `oauth_callback`: where people's sign-ins return (none: MCP agents
    that act as each person cannot be used)."""
    from adapters.a2a import A2AAdapterFactory
    from adapters.browser import BrowserAdapterFactory
    from adapters.mcp import MCPAdapterFactory

    limits = limits if limits is not None else AdapterLimits()
    return {
        "mcp": MCPAdapterFactory(
            commands=limits.stdio_commands,
            egress=limits.egress,
            sampler=sampler,
            grants=lambda name: OAuthGrants(store, tenant_id, name, vault),
            redirect_uri=oauth_callback,
        ),
        "a2a": A2AAdapterFactory(egress=limits.egress, push=a2a_push),
        "browser": BrowserAdapterFactory(
            vault=vault,
            sessions=lambda name: AdapterSessionStore(store, tenant_id, name),
            egress=limits.egress,
            chromium_path=limits.chromium_path,
        ),
    }
