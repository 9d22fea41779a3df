"""Secrets inside values: recognised wherever they sit in an adapter's config, and masked for showing.

A config's fields are secret by name (`bearer_token`, `credentials`…), but a secret also hides inside a public
value: a URL's userinfo or a query parameter (`https://agent.example/mcp?api_key=…`), a command-line argument
after a flag like `--token` or in the form `--api-key=…`, a header such as `Authorization` or `X-Api-Key`. `redacted`
masks each of those and leaves the rest as written, so an admin still recognises the value; the registry seals the
original with the vault and restores it only for the agent.

Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "•••"
"""What a secret is shown as."""

_SECRET_PARTS = (
    "token",
    "password",
    "passwd",
    "secret",
    "credential",
    "cookie",
    "apikey",
    "accesskey",
    "privatekey",
    "bearer",
    "authoriz",
    "signature",
    "sessionid",
)
_SECRET_WORDS = frozenset({"key", "pwd", "pass", "auth", "sig", "jwt"})
_SECRET_NAMES = frozenset({"session", "storage_state"})
_QUERY_SECRET_NAMES = frozenset({"code", "key", "sig", "auth", "pass", "pwd"})
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """True for a field, header, parameter or flag name that says it holds a secret (`api_key`, `X-Api-Key`…)."""
    lowered = name.strip().lower().lstrip("-")
    if lowered in _SECRET_NAMES:
        return True
    words = [word for word in re.split(r"[^a-z0-9]+", lowered) if word]
    squashed = "".join(words)
    return any(part in squashed for part in _SECRET_PARTS) or bool(words and words[-1] in _SECRET_WORDS)


def _secret_parameter(name: str) -> bool:
    return looks_secret(name) or unquote(name).strip().lower() in _QUERY_SECRET_NAMES


def _masked_pairs(text: str) -> str:
    """`a=1&api_key=x` as `a=1&api_key=•••`: only the values of secret-looking names change."""
    pairs = []
    for pair in text.split("&"):
        name, equals, value = pair.partition("=")
        secret = equals and value and _secret_parameter(name) and not _is_placeholder(unquote(value))
        pairs.append(f"{name}={MASK}" if secret else pair)
    return "&".join(pairs)


def redact_url(url: str) -> str:
    """`url` with its userinfo and the values of secret-looking query (and fragment) parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # not a URL a client would use: show nothing of it rather than guess where the secret is
    netloc = f"{MASK}@{parts.netloc.rpartition('@')[2]}" if "@" in parts.netloc else parts.netloc
    query, fragment = _masked_pairs(parts.query), _masked_pairs(parts.fragment)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_args(args: list[str] | tuple[str, ...]) -> list[str]:
    """Command-line arguments with the value of each secret-looking flag masked (`--token X`, `--api-key=X`)."""
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("--"):
            shown.append(MASK)
            hide_next = False
            continue
        hide_next = False
        flag, equals, value = arg.partition("=")
        if flag.startswith("-") and looks_secret(flag):
            if equals:
                shown.append(f"{flag}={MASK}" if value else arg)
            else:
                shown.append(arg)
                hide_next = True
            continue
        shown.append(redact_url(arg) if _URL.match(arg) else arg)
    return shown


def _is_placeholder(value: str) -> bool:
    """A template placeholder such as `{credentials.password}`: names a secret, holds none."""
    return bool(_PLACEHOLDER.fullmatch(value.strip()))


def redacted(value: Any) -> Any:
    """`value` (plain JSON data) with every secret inside it masked; the same object when there was none."""
    if isinstance(value, str):
        return redact_url(value) if _URL.match(value) else value
    if isinstance(value, list | tuple):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            shown: list[Any] = redact_args(items)
        else:
            shown = [redacted(item) for item in items]
        return value if shown == items else shown
    if isinstance(value, Mapping):
        changed = False
        result: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and looks_secret(key) and item not in (None, "", {}, []):
                masked: Any = item if isinstance(item, str) and _is_placeholder(item) else MASK
            else:
                masked = redacted(item)
            changed = changed or masked != item
            result[key] = masked
        return result if changed else value
    return value


def secrets_in(value: Any) -> list[str]:
    """The secret strings `redacted` would mask in `value` (to scrub them from a message that might echo them)."""
    found: list[str] = []
    if isinstance(value, str) and _URL.match(value):
        try:
            parts = urlsplit(value)
        except ValueError:
            return [value]
        if "@" in parts.netloc:
            found += parts.netloc.rpartition("@")[0].split(":")
        for text in (parts.query, parts.fragment):
            for pair in text.split("&"):
                name, equals, secret = pair.partition("=")
                if equals and secret and _secret_parameter(name) and not _is_placeholder(unquote(secret)):
                    found += [secret, unquote(secret)]
    elif isinstance(value, list | tuple):
        shown = redacted(list(value))
        found += [str(item) for item, mask in zip(value, shown, strict=True) if isinstance(item, str) and mask != item]
        for item in value:
            found += secrets_in(item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and looks_secret(key) and isinstance(item, str):
                found.append(item)
            else:
                found += secrets_in(item)
    return [text for text in dict.fromkeys(found) if text]
