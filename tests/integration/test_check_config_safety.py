"""``pgbot check-config`` as an attacker and an auditor see it (issue 13): no password ever printed or logged,
whatever the error, and every unsafe setting named, with the database asked about its own login role."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import asyncpg
import pytest

from tests.integration.test_cli import config, run_pgbot
from tests.services import throwaway_role

PASSWORD = "Zq9-very-secret-pw"

MALFORMED = [
    f"postgresql://bob:{PASSWORD}@127.0.0.1:abc/shop",  # the reported one: a port that is not a number
    f"postgresql://bob:{PASSWORD}@127.0.0.1:99999/shop",  # a port out of range
    f"postgresql://bob:{PASSWORD}@127.0.0.1:5432,h2:x/shop",  # one bad port in a host list
    f"postgresql://bob:{PASSWORD}@[::1/shop",  # a broken IPv6 address
    f"postgresql://bob:{PASSWORD}@127.0.0.1/shop?port=nope",  # the port in the query string
    f"postgresql://bob:{PASSWORD}@127.0.0.1/shop?sslmode",  # a query field without a value
    f"postgresql://bob:{PASSWORD[:5]}/{PASSWORD[5:]}@127.0.0.1/shop",  # an unescaped '/' moves it into the port
    f"host=127.0.0.1 user=bob password={PASSWORD}",  # libpq key=value: asyncpg cannot read it
    f"mysql://bob:{PASSWORD}@127.0.0.1/shop",
]


def log_text(home: Path) -> str:
    log = home / ".pgbot" / "pgbot.log"
    return log.read_text() if log.exists() else ""


@pytest.mark.parametrize("dsn", MALFORMED)
async def test_a_malformed_dsn_is_one_line_without_the_password(tmp_path: Path, dsn: str) -> None:
    path = config(tmp_path, f'[databases.shop]\ndsn = "{dsn}"\n')
    code, out, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 2, out + err
    assert f"FAIL {path}: databases.shop.dsn: " in err and "the DSN" in err
    for part in (PASSWORD, PASSWORD[:5] + "/", PASSWORD[5:]):
        assert part not in out + err + log_text(tmp_path)
    assert "Traceback" not in out + err


async def test_an_unexpected_error_prints_an_id_and_logs_no_locals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure no check foresaw (here asyncpg reading a bad PGPORT while the DSN holds a password): one
    line on stderr; the traceback goes to the log file as plain text, without the frames' local variables."""
    monkeypatch.setenv("PGPORT", "not-a-port")
    path = config(tmp_path, f'[databases.shop]\ndsn = "postgresql://bob:{PASSWORD}@127.0.0.1/shop"\n')
    code, out, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 1
    assert err.count("\n") == 1 and "Internal error, id=" in err and "Traceback" not in out + err
    log = log_text(tmp_path)
    assert "ValueError" in log and PASSWORD not in out + err + log


async def test_unsafe_settings_are_named_and_strict_fails(tmp_path: Path, pg_admin_dsn: str) -> None:
    """The test server's admin login is a superuser: with Slack configured and no roles table, self-approval
    on and "*" mapped to a role that writes, each is named; --strict turns them into a failed check."""
    path = config(tmp_path, f"""
[databases.shop]
dsn = "{pg_admin_dsn}"
[databases.shop.approvers]
users = ["slack:U1"]
allow_self_approval = true
[slack]
bot_token = "${{SLACK_BOT_TOKEN}}"
""")
    code, out, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 0, err
    assert "databases.shop.dsn: the login role postgres is a superuser" in out
    assert "databases.shop.roles: no roles table, so every Slack user runs statements as the login role" in out
    assert "databases.shop.approvers.allow_self_approval: true" in out
    assert "3 unsafe setting(s)" in out
    code, out, _ = await run_pgbot("check-config", "--strict", "--config", str(path), home=tmp_path)
    assert code == 1 and out.strip().endswith(f"FAILED: 0 problem(s), 3 unsafe setting(s) in {path}")


async def test_a_login_that_is_a_member_of_a_stronger_role_is_named(
    tmp_path: Path, fresh_db: str, pg_admin_dsn: str
) -> None:
    """A non-superuser login that may become a role no one is mapped to and that writes, and "*" mapped to a
    role that writes: the database itself says so (core.diagnostics.login_check)."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE salaries (who text, amount int)")
    finally:
        await conn.close()
    async with (throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_login") as login,
                throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_reader",
                               grants="GRANT SELECT ON salaries TO {role}") as reader,
                throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_dba",
                               grants="GRANT ALL ON salaries TO {role}") as dba,
                throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_everyone",
                               grants="GRANT UPDATE ON salaries TO {role}") as everyone):
        admin = await asyncpg.connect(fresh_db)
        try:
            await admin.execute(f'ALTER ROLE "{login}" LOGIN; GRANT "{reader}", "{dba}", "{everyone}" TO "{login}"')
        finally:
            await admin.close()
        parts = urllib.parse.urlsplit(fresh_db)
        dsn = parts._replace(netloc=f"{login}@{parts.hostname}:{parts.port or 5432}").geturl()
        path = config(tmp_path, f"""
[databases.shop]
dsn = "{dsn}"
roles = {{ "slack:U1" = "{reader}", "*" = "{everyone}", "slack:U2" = "pgbot_missing_role" }}
approvers = {{ users = ["slack:U9"] }}
[slack]
bot_token = "${{SLACK_BOT_TOKEN}}"
""")
        code, out, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 0, err
    assert "is a superuser" not in out
    assert f"the login role {login} is a member of {dba}, which no chat user is mapped to" in out
    assert f'"*" maps everyone to {everyone}, which can change data or schema' in out
    assert "mapped role(s) pgbot_missing_role do not exist" in out
    assert reader not in " ".join(line for line in out.splitlines() if line.startswith("UNSAFE"))
