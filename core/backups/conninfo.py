"""How the client programs reach a configured database without a password on their command line.

pg_dump and pg_restore take the DSN as ``--dbname`` with the password removed; the password goes in the
child's environment (``PGPASSWORD``), which other users cannot read. Every text that came from a child
(stderr) is scrubbed of the password before anyone sees it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from core.errors import BackupError


@dataclass(frozen=True, slots=True)
class ClientTarget:
    """One database as libpq sees it: a password-free URI, the environment carrying the secret."""

    uri: str  # safe to show and to put on a command line
    env: dict[str, str] = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this target replaced by ``***``."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def client_target(dsn: str, *, dbname: str | None = None, server_major: int = 0) -> ClientTarget:
    """Split ``dsn`` (a ``postgresql://`` URI, as asyncpg takes) into a password-free URI and environment.

    ``dbname`` replaces the database the URI names (a restore's new database on the same server). On
    PostgreSQL 14+ the child's sessions check every few seconds that it is still there, so a client killed
    while its server session waits (for a lock, say) does not leave that session behind."""
    parts = urlsplit(dsn)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise BackupError("Backups need the database's dsn as a postgresql:// URI.")
    password = parts.password
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept: list[tuple[str, str]] = []
    for key, value in query:
        if key == "password":
            password = password or value
        elif key in {"dbname", "database"} and dbname is not None:
            continue
        else:
            kept.append((key, value))
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username is not None:
        netloc = quote(unquote(parts.username), safe="") + "@" + netloc
    path = "/" + quote(dbname, safe="") if dbname is not None else parts.path
    uri = urlunsplit((parts.scheme, netloc, path, urlencode(kept, safe="/"), ""))
    env = dict(os.environ)  # the operator's PGSSL* settings and the like still apply; the URI wins on the rest
    env["PGAPPNAME"] = "pgbot:backup"
    env["PGCONNECT_TIMEOUT"] = "10"
    if server_major >= 14:
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c client_connection_check_interval=2000").strip()
    secrets: tuple[str, ...] = ()
    if password:
        plain = unquote(password)
        env["PGPASSWORD"] = plain
        secrets = (plain, password)
    return ClientTarget(uri=uri, env=env, secrets=secrets)


def database_name(dsn: str) -> str | None:
    """The database a URI names, if it names one."""
    parts = urlsplit(dsn)
    name = unquote(parts.path.lstrip("/"))
    if name:
        return name
    for key, value in parse_qsl(parts.query):
        if key in {"dbname", "database"}:
            return value
    return None


def with_database(dsn: str, dbname: str) -> str:
    """``dsn`` (password kept, for our own asyncpg connections only) pointing at ``dbname``."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in {"dbname", "database"}]
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), urlencode(query, safe="/"), ""))
