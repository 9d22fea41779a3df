"""Settings, read from the environment (and `.env`, loaded by the entry point, never on import)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from adapters import AdapterLimits, AdapterSettingInvalid
from planner.domain.decisions import DecisionKeys
from planner.store import anchored_url, sqlite_file, url_without_password
from planner.store.vault import Vault, VaultError

TEAMS_SERVICE_HOSTS = ("smba.trafficmanager.net",)
DEFAULT_MODEL = "claude-sonnet-5-5"
DATABASE_FILE = "chief_of_staff.db"
LOCAL_KEY_FILE = "chief_of_staff.key"
DECISION_CHECKPOINTS_FILE = "decision_checkpoints.json"
DATA_DIR_NAME = "chief-of-staff"


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the bot keeps its files unless told otherwise: COS_DATA_DIR, else `$XDG_DATA_HOME/chief-of-staff`,
    else `~/.local/share/chief-of-staff`. The same folder whatever folder a command runs from."""
    explicit = env.get("COS_DATA_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG spec: a relative XDG_DATA_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / DATA_DIR_NAME
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".local" / "share" / DATA_DIR_NAME


def _in_data_dir(value: str, data_dir: Path, default: str) -> str:
    """A file setting: empty is `default` in the data folder; a relative path is relative to the data folder."""
    path = Path(value).expanduser() if value else Path(default)
    return str(path if path.is_absolute() else data_dir / path)


class SettingsError(ValueError):
    """A setting has a value the bot cannot use; the message names the variable."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"{name}={value!r} is not valid: expected {expected}.")


class LocalKeyMissing(VaultError):
    """Local mode's key file is not there: `cos serve` makes it, and only while nothing is sealed with a key."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the local secret key file {path.resolve()} does not exist. `cos serve` makes it on its first start; "
            "if it was deleted, restore it from a backup (or set COS_SECRET_KEYS to the key it held)"
        )


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(name, raw, "a whole number") from None


def _switch(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip()
    if raw.lower() in ("", "off", "no", "false", "0"):
        return False
    if raw.lower() in ("on", "yes", "true", "1"):
        return True
    raise SettingsError(name, raw, "on or off")


def _approval_hours(env: Mapping[str, str]) -> int:
    hours = _int(env, "COS_APPROVAL_EXPIRY_HOURS", 48)
    if not 1 <= hours <= 90 * 24:
        raise SettingsError("COS_APPROVAL_EXPIRY_HOURS", str(hours), "a number of hours from 1 to 2160 (90 days)")
    return hours


def _home_data_dir() -> Path:
    return default_data_dir({})


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path = field(default_factory=_home_data_dir)
    """The folder of the bot's own files (COS_DATA_DIR): the SQLite database, local mode's key file, the decision log's
    checkpoint. Relative paths in those settings are relative to it, never to the folder a command runs from."""
    database_url: str = field(default_factory=lambda: f"sqlite+aiosqlite:///{_home_data_dir() / DATABASE_FILE}")
    host: str = "127.0.0.1"
    port: int = 3978
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_tenant_id: str = ""
    app_type: str = "MultiTenant"
    extra_service_hosts: tuple[str, ...] = ()
    anthropic_api_key: str = field(default="", repr=False)
    llm_model: str = DEFAULT_MODEL
    log_level: str = "INFO"
    max_body_bytes: int = 256 * 1024
    tick_seconds: int = 60
    approval_expiry_hours: int = 48
    """How long an approval request waits for a decision before it expires."""
    admins: tuple[str, ...] = ()
    """AAD object ids of the people who may administer the bot (adapters, dead letters)."""
    local_admin: str = ""
    """In local mode, the one user id that is an admin besides `admins` (`cos serve --local-admin`)."""
    secret_keys: str = field(default="", repr=False)
    """Keys that encrypt secrets at rest, newest first (see planner/store/vault.py)."""
    secret_key_file: str = field(default_factory=lambda: str(_home_data_dir() / LOCAL_KEY_FILE))
    """In local mode without COS_SECRET_KEYS, the key is made once and kept in this file (owner-only)."""
    openid_metadata_url: str = ""
    """Where the keys that sign the Bot Framework's tokens are published; empty: Microsoft's public cloud."""
    public_url: str = ""
    """The bot's address as agents on the internet reach it (`https://cos.example.com`): A2A agents post task updates
    under it (`/api/a2a/push`). Empty: the tasks are polled."""
    decision_checkpoints: str = ""
    """The signed checkpoint of the decision log's heads, outside the database; empty: next to the key file."""
    adapter_limits: AdapterLimits = field(default_factory=AdapterLimits)
    """What adapters may run and reach: COS_STDIO_COMMANDS(_FILE), COS_ADAPTER_ALLOWED_NETWORKS, COS_CHROMIUM_PATH."""
    mcp_sampling: bool = False
    """COS_MCP_SAMPLING=on: lend the bot's model (it needs ANTHROPIC_API_KEY) to MCP servers that ask (sampling),
    text only and behind each tenant's policy gate; off, their requests are declined with the reason."""

    @property
    def local_mode(self) -> bool:
        """No Azure Bot credentials: inbound activities cannot be authenticated, so only loopback may talk."""
        return not self.app_id

    @property
    def database_file(self) -> Path | None:
        """The SQLite file the bot uses (an absolute path); None for PostgreSQL."""
        path = sqlite_file(self.database_url)
        return path.absolute() if path is not None else None

    @property
    def database_shown(self) -> str:
        """Which database, as an operator reads it: the SQLite file's path, or the URL without its password."""
        path = self.database_file
        if path is not None:
            return f"SQLite file {path}"
        return url_without_password(self.database_url)

    def make_database_folder(self) -> None:
        """Make the folder of the SQLite file (owner-only), for the commands that create the database."""
        path = self.database_file
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    @property
    def approval_expiry(self) -> timedelta:
        return timedelta(hours=self.approval_expiry_hours)

    def vault(self) -> Vault | None:
        """The vault for secrets at rest: from COS_SECRET_KEYS; in local mode, the key kept in a local file.

        None in production without keys (delegation then says how to configure it). Raises VaultError for a bad
        key, LocalKeyMissing when local mode's key file is not there (see `create_local_key`).
        """
        if self.secret_keys:
            return Vault.from_setting(self.secret_keys)
        if not self.local_mode:
            return None
        path = Path(self.secret_key_file)
        try:
            return Vault.from_setting(path.read_text().strip())
        except FileNotFoundError:
            raise LocalKeyMissing(path) from None

    @property
    def needs_local_key(self) -> bool:
        """Local mode without COS_SECRET_KEYS: secrets are sealed with the key in `secret_key_file`."""
        return self.local_mode and not self.secret_keys

    def create_local_key(self) -> Path:
        """Make local mode's key file (owner-only); raises FileExistsError rather than replace one.

        Only for a database that holds nothing sealed yet (bot/server.py checks): a new key opens no old secret.
        """
        path = Path(self.secret_key_file)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(Vault.generate_key())
        return path

    def decision_keys(self) -> DecisionKeys | None:
        """The keys that sign the decision log, derived from the vault's (None without a vault). Raises VaultError."""
        vault = self.vault()
        return DecisionKeys.from_vault(vault) if vault is not None else None

    @property
    def decision_checkpoints_path(self) -> Path:
        """Where the decision log's checkpoint is kept: COS_DECISION_CHECKPOINTS, or a file next to the key file."""
        if self.decision_checkpoints:
            return Path(self.decision_checkpoints)
        return Path(self.secret_key_file).parent / DECISION_CHECKPOINTS_FILE

    def is_admin(self, user_id: str) -> bool:
        """The users listed in COS_ADMINS; in local mode also the one `--local-admin` named. Nobody else: a local
        bot authenticates no one, so being at the keyboard proves nothing."""
        if not user_id:
            return False
        if user_id in self.admins:
            return True
        return self.local_mode and user_id == self.local_admin

    @property
    def allowed_service_hosts(self) -> tuple[str, ...]:
        return TEAMS_SERVICE_HOSTS + self.extra_service_hosts

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, strict: bool = True) -> Settings:
        """Settings from environment variables (see `.env.example` for each one).

        `strict=False` skips the checks that only serving needs (a password and tenant with the app id).
        """
        env = os.environ if env is None else env
        data_dir = default_data_dir(env)
        app_type = env.get("MICROSOFT_APP_TYPE", "").strip() or "MultiTenant"
        if app_type not in ("MultiTenant", "SingleTenant", "UserAssignedMSI"):
            raise SettingsError("MICROSOFT_APP_TYPE", app_type, "MultiTenant, SingleTenant or UserAssignedMSI")
        app_id = env.get("MICROSOFT_APP_ID", "").strip()
        password = env.get("MICROSOFT_APP_PASSWORD", "").strip()
        tenant_id = env.get("MICROSOFT_APP_TENANT_ID", "").strip()
        if strict and app_id and app_type != "UserAssignedMSI" and not password:
            raise SettingsError("MICROSOFT_APP_PASSWORD", "", "the client secret of the app registration")
        if strict and app_id and app_type != "MultiTenant" and not tenant_id:
            raise SettingsError("MICROSOFT_APP_TENANT_ID", "", f"the tenant id for a {app_type} bot")
        local_admin = env.get("COS_LOCAL_ADMIN", "").strip()
        if strict and app_id and local_admin:
            raise SettingsError(
                "COS_LOCAL_ADMIN", local_admin, "nothing with MICROSOFT_APP_ID set: list the admins in COS_ADMINS"
            )
        port = _int(env, "COS_PORT", 3978)
        if not 0 < port < 65536:
            raise SettingsError("COS_PORT", str(port), "a TCP port from 1 to 65535")
        commands_file = env.get("COS_STDIO_COMMANDS_FILE", "").strip()
        if commands_file:
            env = {**env, "COS_STDIO_COMMANDS_FILE": _in_data_dir(commands_file, data_dir, "")}
        try:
            adapter_limits = AdapterLimits.from_env(env)
        except AdapterSettingInvalid as error:
            raise SettingsError(error.setting, error.value, error.expected) from None
        database_url = env.get("DATABASE_URL", "").strip() or f"sqlite+aiosqlite:///{DATABASE_FILE}"
        try:
            database_url = anchored_url(database_url, data_dir)
        except ValueError:
            raise SettingsError("DATABASE_URL", database_url, "a database URL such as postgresql+asyncpg://…") from None
        checkpoints = env.get("COS_DECISION_CHECKPOINTS", "").strip()
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            host=env.get("COS_HOST", "").strip() or "127.0.0.1",
            port=port,
            app_id=app_id,
            app_password=password,
            app_tenant_id=tenant_id,
            app_type=app_type,
            extra_service_hosts=_split(env.get("COS_ALLOWED_SERVICE_HOSTS", "")),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY", "").strip(),
            llm_model=env.get("COS_LLM_MODEL", "").strip() or DEFAULT_MODEL,
            log_level=(env.get("COS_LOG_LEVEL", "").strip() or "INFO").upper(),
            max_body_bytes=_int(env, "COS_MAX_BODY_BYTES", 256 * 1024),
            tick_seconds=max(_int(env, "COS_TICK_SECONDS", 60), 1),
            approval_expiry_hours=_approval_hours(env),
            admins=_split(env.get("COS_ADMINS", "")),
            local_admin=local_admin,
            secret_keys=env.get("COS_SECRET_KEYS", "").strip(),
            secret_key_file=_in_data_dir(env.get("COS_SECRET_KEY_FILE", "").strip(), data_dir, LOCAL_KEY_FILE),
            openid_metadata_url=env.get("COS_OPENID_METADATA_URL", "").strip(),
            decision_checkpoints=_in_data_dir(checkpoints, data_dir, "") if checkpoints else "",
            public_url=env.get("COS_PUBLIC_URL", "").strip().rstrip("/"),
            adapter_limits=adapter_limits,
            mcp_sampling=_switch(env, "COS_MCP_SAMPLING"),
        )
