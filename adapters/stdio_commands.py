"""The programs a stdio MCP adapter may start: an allow-list the operator sets in the environment, never in chat.

An admin's config names an entry (`{"transport": "stdio", "command": "mcp-server-time"}`); the entry says which
program runs, with which fixed arguments, in which folder, with which environment. A chat message can add
arguments only where the entry says `allow_args`, and set only the environment variables the entry names in
`allow_env` (an API key, say); it never supplies a path, a working folder, or a variable such as `LD_PRELOAD`.

The setting, `COS_STDIO_COMMANDS`, is either a comma-separated list of names, each run from the PATH (else from the
bot's own Python environment, where `pip install` puts a server's program) or from a fixed path
(`mcp-server-time, crm=/opt/crm/bin/mcp-serve`), or a JSON object of entries; `COS_STDIO_COMMANDS_FILE` names a
JSON or YAML file of the same object. An entry:

    {"command": "/opt/crm/bin/mcp-serve", "args": ["--stdio"], "cwd": "/srv/crm", "env": {"CRM_REGION": "eu"},
     "allow_env": ["CRM_API_KEY"], "allow_args": false}

The child's environment is `PATH`, `HOME`, `LANG` and `TZ` from the bot's, the entry's `env`, and the allowed
variables of the admin's config; none of the bot's secrets. (The MCP SDK adds `LOGNAME`, `SHELL`, `TERM` and
`USER` from the bot's environment too.) The child runs as the bot's user unless the entry's command switches user
(see the README): the allow-list decides what runs, not what the program may then read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COMMANDS_SETTING = "COS_STDIO_COMMANDS"
COMMANDS_FILE_SETTING = "COS_STDIO_COMMANDS_FILE"
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "TZ")
DEFAULT_CWD = "/"
"""Where a child starts when its entry names no folder: not the bot's own (its `.env` and key file are there)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENTRY_FIELDS = ("command", "args", "env", "cwd", "allow_args", "allow_env")


class StdioCommandsInvalid(ValueError):
    """The operator's allow-list cannot be read: the message names the setting and the entry."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


@dataclass(frozen=True, kw_only=True)
class StdioCommand:
    """One allowed program and what a config may add to it."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    allow_args: bool = False
    allow_env: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Launch:
    """What to start for one adapter: the program, its arguments, its environment, its folder."""

    command: str
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str


@dataclass(frozen=True)
class StdioCommands:
    """The operator's allow-list, by entry name; empty by default (no stdio adapter can start anything)."""

    entries: Mapping[str, StdioCommand] = field(default_factory=dict)

    @classmethod
    def of(cls, *entries: StdioCommand) -> StdioCommands:
        return cls({entry.name: entry for entry in entries})

    @classmethod
    def from_settings(cls, text: str = "", *, file: str = "") -> StdioCommands:
        """The allow-list of `COS_STDIO_COMMANDS` and `COS_STDIO_COMMANDS_FILE`.

        Raises:
            StdioCommandsInvalid: naming the setting and what is wrong in it.
        """
        entries = _parse(text, COMMANDS_SETTING) if text.strip() else {}
        if file.strip():
            try:
                raw = Path(file.strip()).read_text()
            except OSError as error:
                raise StdioCommandsInvalid(COMMANDS_FILE_SETTING, f"cannot read {file!r} ({error.strerror})") from None
            for name, entry in _parse(raw, COMMANDS_FILE_SETTING, yaml_allowed=True).items():
                if name in entries:
                    raise StdioCommandsInvalid(COMMANDS_FILE_SETTING, f"{name!r} is also in {COMMANDS_SETTING}")
                entries[name] = entry
        return cls(entries)

    def problems(self, command: object, args: object, env: object, cwd: object) -> list[str]:
        """What a stdio config from chat may not ask for (empty when the allow-list lets it run)."""
        entry = self.entries.get(command) if isinstance(command, str) else None
        if entry is None:
            listed = ", ".join(sorted(self.entries)) or "none yet"
            shown = repr(command[:80]) if isinstance(command, str) else "that"
            return [
                f"command: {shown} is not one of the stdio commands the operator allows ({listed}). A stdio adapter "
                f"names an entry of {COMMANDS_SETTING} (or {COMMANDS_FILE_SETTING}); the operator adds one there "
                "and restarts the bot"
            ]
        problems: list[str] = []
        if args and not entry.allow_args:
            problems.append(
                f"args: the entry {entry.name!r} takes no arguments from a config (its own are fixed); the operator "
                f"can set allow_args for it in {COMMANDS_SETTING}"
            )
        if isinstance(args, list | tuple) and any(isinstance(arg, str) and "\0" in arg for arg in args):
            problems.append("args: an argument must not contain a NUL character")
        if isinstance(env, Mapping):
            refused = sorted(str(name) for name in env if name not in entry.allow_env)
            if refused:
                allowed = ", ".join(sorted(entry.allow_env)) or "none"
                problems.append(
                    f"env: {', '.join(refused)} may not be set for {entry.name!r} (it allows {allowed}); the operator "
                    f"names the variables a config may set in the entry's allow_env"
                )
        if cwd is not None:
            problems.append(f"cwd: the working folder is the operator's to set (the entry's cwd in {COMMANDS_SETTING})")
        return problems

    def launch(
        self, name: str, args: tuple[str, ...], env: Mapping[str, str], *, environ: Mapping[str, str] | None = None
    ) -> Launch:
        """What runs for a config naming `name` (checked with `problems` first), with `environ` the bot's own."""
        entry = self.entries[name]
        environ = os.environ if environ is None else environ
        child = {variable: environ[variable] for variable in INHERITED_VARIABLES if variable in environ}
        child.update(entry.env)
        child.update({variable: value for variable, value in env.items() if variable in entry.allow_env})
        return Launch(
            command=_program(entry.command, child.get("PATH")),
            args=(*entry.args, *(args if entry.allow_args else ())),
            env=child,
            cwd=entry.cwd or DEFAULT_CWD,
        )


def _program(command: str, path: str | None) -> str:
    """A bare program name runs from the PATH, else from the scripts folder of the Python running the bot: a server
    installed beside the bot (`.venv/bin/pip install mcp-server-time`) starts without its virtualenv activated."""
    if os.sep in command or shutil.which(command, path=path):
        return command
    own = Path(sysconfig.get_path("scripts")) / command
    return str(own) if own.is_file() and os.access(own, os.X_OK) else command


def _parse(text: str, setting: str, *, yaml_allowed: bool = False) -> dict[str, StdioCommand]:
    stripped = text.strip()
    if not stripped.startswith("{") and not yaml_allowed:
        return _parse_list(stripped, setting)
    try:
        raw = yaml.safe_load(stripped) if yaml_allowed else json.loads(stripped)
    except (ValueError, yaml.YAMLError) as error:
        raise StdioCommandsInvalid(
            setting, f"not a JSON{' or YAML' if yaml_allowed else ''} object ({error})"
        ) from None
    if not isinstance(raw, Mapping):
        raise StdioCommandsInvalid(setting, "must be an object mapping entry names to commands")
    return {str(name): _entry(str(name), body, setting) for name, body in raw.items()}


def _parse_list(text: str, setting: str) -> dict[str, StdioCommand]:
    entries: dict[str, StdioCommand] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, equals, path = (piece.strip() for piece in part.partition("="))
        if equals and not os.path.isabs(path):
            raise StdioCommandsInvalid(setting, f"{name}={path!r}: a fixed path must be absolute")
        entries[name] = _entry(name, {"command": path if equals else name}, setting)
    return entries


def _entry(name: str, body: Any, setting: str) -> StdioCommand:
    if not _NAME.fullmatch(name):
        raise StdioCommandsInvalid(setting, f"{name!r} is not a usable name (letters, digits, '-', '_', '.')")
    if isinstance(body, str):
        body = {"command": body}
    if not isinstance(body, Mapping):
        raise StdioCommandsInvalid(setting, f"{name}: must be a command or an object with a command")
    unknown = [str(key) for key in body if key not in _ENTRY_FIELDS]
    command, args, env = body.get("command"), body.get("args", []), body.get("env", {})
    cwd, allow_args, allow_env = body.get("cwd"), body.get("allow_args", False), body.get("allow_env", [])
    problems = [f"unknown field {key!r} (known: {', '.join(_ENTRY_FIELDS)})" for key in unknown]
    if not isinstance(command, str) or not command.strip():
        problems.append("command must be a program name or an absolute path")
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        problems.append("args must be a list of strings")
    if not isinstance(env, Mapping) or not all(
        isinstance(v, str) and _VARIABLE.fullmatch(str(k)) for k, v in env.items()
    ):
        problems.append("env must map variable names to strings")
    if cwd is not None and (not isinstance(cwd, str) or not os.path.isabs(cwd)):
        problems.append("cwd must be an absolute path")
    if not isinstance(allow_args, bool):
        problems.append("allow_args must be true or false")
    if not isinstance(allow_env, list) or not all(isinstance(v, str) and _VARIABLE.fullmatch(v) for v in allow_env):
        problems.append("allow_env must be a list of variable names")
    if problems or not isinstance(command, str):
        raise StdioCommandsInvalid(setting, f"{name}: {'; '.join(problems)}")
    return StdioCommand(
        name=name,
        command=command.strip(),
        args=tuple(args),
        env=dict(env),
        cwd=cwd,
        allow_args=allow_args,
        allow_env=frozenset(allow_env),
    )
