"""Redaction: connection strings and error messages safe to print. A leaf.

``psycopg.conninfo`` is libpq's connection-string parser (no connection is made here).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def redact(conninfo: str) -> str:
    """A connection string with its password (key=value or URI form) replaced by ***."""
    try:
        parts = conninfo_to_dict(conninfo)
    except Exception:
        for pattern in _PASSWORD_PATTERNS:
            conninfo = pattern.sub(_mask_group, conninfo)
        return conninfo
    if "password" in parts:
        parts["password"] = "***"
    return make_conninfo(**{key: str(value) for key, value in parts.items()})


_PASSWORD_PATTERNS = (
    re.compile(r"://[^:/?#@]*:(.*)@"),  # URI userinfo, up to the last @
    re.compile(r"(?i)[?&]password=([^&#]*)"),  # URI query parameter
    re.compile(r"(?i)\bpassword\s*=\s*'((?:\\.|[^'])*)'?"),  # key='quoted value'
    re.compile(r"(?i)\bpassword\s*=\s*([^'\s]\S*)"),  # key=value
)


def _mask_group(match: re.Match[str]) -> str:
    """The match with its first group (the password) replaced by ***."""
    start, end = match.span(1)
    whole = match.group(0)
    return whole[: start - match.start()] + "***" + whole[end - match.start() :]


def password_candidates(conninfo: str) -> list[str]:
    """Whatever looks like a password in a connection string, even one libpq cannot
    parse (its error messages may quote any part of it), raw and percent-decoded."""
    found = {
        text
        for pattern in _PASSWORD_PATTERNS
        for match in pattern.finditer(conninfo)
        for text in (match.group(1), unquote(match.group(1)))
        if text
    }
    return sorted(found, key=len, reverse=True)


def first_line(exc: BaseException, conninfo: str) -> str:
    """The first line of an error, with the connection string's password masked (libpq
    may echo parts of the connection string)."""
    text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except ProgrammingError:
        # unparseable, so libpq may quote any part of it: mask what looks like a password
        for secret in password_candidates(conninfo):
            text = text.replace(secret, "***")
        return redact(text)
    if password:
        text = text.replace(str(password), "***")
    return text
