"""Settings: one TOML file, overridden by ``PGBOT_*`` environment variables and ``.env``.

Precedence (highest first): environment (``PGBOT_LLM__MODEL``), ``.env``, the TOML file, defaults.
String values in the file may reference the environment as ``${NAME}`` (``api_key = "${OPENAI_API_KEY}"``).
Every problem is reported as one line naming the file and the key; secrets are ``SecretStr`` and are never
echoed back.
"""

from __future__ import annotations

import os
import re
import tomllib
import urllib.parse
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from dotenv import find_dotenv, load_dotenv
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("pgbot.toml")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$")
_ENV_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


AnswerText = Literal["auto", "model", "result"]  # [llm] answer_text: who writes the answer after a read


class LlmSettings(_Section):
    model: str = "gpt-4o-mini"
    base_url: str | None = None  # None: OpenAI's own endpoint
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    max_steps: int = Field(default=8, ge=1, le=50)
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    # How tools reach the model: "native" tool_calls, "text" (fenced sql block), or "auto": native, and text
    # for the rest of the process once the server refuses tools or the model writes its calls as text.
    tool_mode: Literal["auto", "native", "text"] = "auto"
    tool_choice: Literal["auto", "required"] = "auto"
    max_question_chars: int = Field(default=8000, ge=100)
    # Most tokens the model may generate per call, sent as max_tokens on every call: room for a short answer
    # or a tool call with a long query; a model that rambles stops there instead of filling its context.
    max_tokens: int = Field(default=1024, ge=16, le=131_072)
    # Who writes the answer after a successful read: "model" (one more call: the model reads the result and
    # answers in a sentence), "result" (pgbot states the result itself, no second call), or "auto": "result"
    # when the model wrote its query as text (small local models, where every call costs seconds), else "model".
    answer_text: AnswerText = "auto"
    # Tools the model is never offered, by name (e.g. "propose_restore"): a capability a team does not want
    # from chat, or fewer tool schemas per call for a small local model. Slash commands still run a disabled
    # read tool (/sql with run_query off); a disabled change tool (propose_change) is off for them too.
    disabled_tools: list[str] = Field(default_factory=list)

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        """``api_key = "${OPENAI_API_KEY}"`` with the variable blank (docker-compose.yml's default) means no
        key: the "no model configured" hint, not calls that fail only after a timeout or a 401."""
        secret = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(secret, str) and not secret.strip() else value


class AccuracySettings(_Section):
    """Techniques that make answers more accurate; each one can be switched off to measure what it buys."""

    server_version: bool = True  # name the PostgreSQL version in the prompt (dialect: MERGE, JSON functions, ...)
    value_hints: bool = True  # a few distinct values of low-cardinality text columns of the tables in play
    value_hints_max_distinct: int = Field(default=25, ge=1, le=500)  # more distinct values: not "low cardinality"
    value_hints_max_values: int = Field(default=12, ge=1, le=100)  # values shown per column
    value_hints_max_columns: int = Field(default=40, ge=1, le=1000)
    value_hints_ttl_s: int = Field(default=600, ge=0)
    shape_hints: bool = True  # one line of SQL idiom for wording small models get wrong ("no", "every", running total)
    explain_first: bool = True  # EXPLAIN each query before running it: errors come back without executing
    sql_retries: bool = True  # feed Postgres errors back so the model can fix its SQL
    max_repeated_failures: int = Field(default=3, ge=1, le=20)  # the same failure this often ends the turn
    relative_dates: bool = True  # resolve "last month" from the database's now() and TimeZone; state it
    clarifying_questions: bool = True  # offer ask_clarification: an ambiguous request gets a question back
    examples: bool = True  # put 👍 question/SQL pairs of this database into the prompt for similar questions
    max_examples: int = Field(default=3, ge=0, le=20)
    unverified_note: bool = True  # say so when an answer quotes numbers without any query behind it
    # Never show an invented result: prose with numbers no query or tool produced, text imitating a tool's
    # output, or prose after a failed query goes back to the model (twice at most), then is withheld.
    grounded_answers: bool = True


DISCORD_ROLE = "discord-role:"  # a roles/approvers key naming a Discord guild role: discord-role:<role id>


def _check_group_key(key: str) -> None:
    """A mistyped group key would silently never match anyone: refuse it when the config is loaded."""
    ident = key.removeprefix(DISCORD_ROLE)
    if key.startswith(DISCORD_ROLE) and not (ident.isascii() and ident.isdigit()):
        raise ValueError(f"{key!r}: a Discord role is named by its numeric id, e.g. discord-role:123456789012345678 "
                         "(Developer Mode → right-click the role → Copy Role ID)")


class ApproverSettings(_Section):
    roles: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)  # identities, or discord-role:<id> for a guild role's members
    allow_self_approval: bool = False

    @field_validator("users")
    @classmethod
    def _users_are_keys(cls, value: list[str]) -> list[str]:
        for who in value:
            _check_group_key(who)
        return value


def dsn_problem(dsn: str) -> str | None:
    """Why asyncpg could not parse ``dsn``, in words that quote none of it (any part may be a password: an
    unescaped ``/``, ``@`` or ``#`` moves the password into the host or port), or None when it parses."""
    escape_hint = " (a password with '/', '@', '#', '?' or ':' must be percent-encoded, e.g. @ as %40)"
    try:
        parsed = urllib.parse.urlparse(dsn)
        query = urllib.parse.parse_qs(parsed.query, strict_parsing=True) if parsed.query else {}
    except ValueError:
        return "is not a valid postgresql:// URL" + escape_hint
    if parsed.scheme not in {"postgresql", "postgres"}:
        return "must be a postgresql://user:password@host:port/database URL (key=value strings are not accepted)"
    hostspec = parsed.netloc.partition("@")[2] if "@" in parsed.netloc else parsed.netloc
    ports = [_port_of(spec) for spec in hostspec.split(",") if spec] if hostspec else []
    ports += [p for value in query.get("port", [])[-1:] for p in value.split(",")]
    if any(p is None for p in ports):
        return "names a host that is not a valid host[:port]" + escape_hint
    if any(p and not (p.isascii() and p.isdigit() and 0 < int(p) <= 65535) for p in ports if p is not None):
        return "has a port that is not a number from 1 to 65535" + escape_hint
    return None


def _port_of(hostspec: str) -> str | None:
    """The port part of one ``host[:port]`` as asyncpg reads it ("" when absent), None when malformed."""
    if hostspec.startswith("/"):
        return ""
    if hostspec.startswith("["):
        match = re.fullmatch(r"\[[^\]]+\](?::(.*))?", hostspec)
        return None if match is None else urllib.parse.unquote(match.group(1) or "")
    return urllib.parse.unquote(hostspec.partition(":")[2])


class DatabaseSettings(_Section):
    dsn: SecretStr
    default: bool = False
    description: str = ""
    statement_timeout_ms: int = Field(default=15000, ge=1)
    lock_timeout_ms: int = Field(default=3000, ge=1)
    # Approved changes (an UPDATE of many rows, CREATE INDEX CONCURRENTLY, VACUUM, a migration) are
    # deliberate and may take far longer than a question's query; lock_timeout still bounds lock waits.
    change_timeout_ms: int = Field(default=30 * 60 * 1000, ge=1)
    max_rows: int = Field(default=500, ge=1, le=100_000)
    max_cell_chars: int = Field(default=500, ge=16)
    pool_min_size: int = Field(default=0, ge=0)
    pool_max_size: int = Field(default=10, ge=1, le=500)
    max_concurrent_per_user: int = Field(default=4, ge=1)
    max_concurrent_turns: int = Field(default=32, ge=1)  # conversations working on this database at once
    # Waiting for a free pooled connection (all busy) is not "unreachable": a longer wait, then a busy reply.
    pool_acquire_timeout_s: float = Field(default=30.0, gt=0)
    schema_context_tokens: int = Field(default=2000, ge=200)  # schema text per question (estimated tokens)
    schema_detail_tables: int = Field(default=8, ge=1, le=100)  # tables shown with columns per question
    export_timeout_ms: int | None = Field(default=None, ge=1)  # CSV export statement_timeout; None: as reads
    connect_timeout_s: float = Field(default=5.0, gt=0)
    migrations_dir: Path | None = None
    migration_timeout_ms: int | None = Field(default=None, ge=1)  # applying a migration; None: change_timeout_ms
    # chat identity (or platform group, e.g. discord-role:<id>) -> database role; absent: every statement runs as
    # the login role. Precedence: the identity's entry, the first matching group in this order, then "*".
    roles: dict[str, str] | None = None
    # One login per mapped role (the recommended production setup): statements run as "analyst" use a pool
    # on role_dsns["analyst"], so Postgres itself bounds them to that login's rights, whatever SQL arrives.
    role_dsns: dict[str, SecretStr] = Field(default_factory=dict)
    # Functions outside pg_catalog that reads may call, as "schema.name" or "schema.*" (an extension's
    # schema); a bare "name" means pg_catalog.name (e.g. "nextval"). Everything else not on pgbot's own
    # allow-list of pg_catalog functions is refused on the read path.
    allowed_functions: list[str] = Field(default_factory=list)
    approvers: ApproverSettings = Field(default_factory=ApproverSettings)

    @field_validator("dsn")
    @classmethod
    def _dsn_parses(cls, value: SecretStr) -> SecretStr:
        """A DSN asyncpg cannot parse fails here, in one line naming the key, not later in a traceback whose
        local variables hold the password (issue 13)."""
        problem = dsn_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(f"the DSN {problem}")
        return value

    @field_validator("role_dsns")
    @classmethod
    def _role_dsns_parse(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        """The same secret-free check for each per-role login's DSN."""
        for role, dsn in value.items():
            problem = dsn_problem(dsn.get_secret_value())
            if problem is not None:
                raise ValueError(f"the DSN for role {role!r} {problem}")
        return value

    @field_validator("allowed_functions")
    @classmethod
    def _functions_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            parts = name.split(".")
            if len(parts) > 2 or not all(p.strip() for p in parts) or (parts[0] == "*" and len(parts) == 2):
                raise ValueError(f"{name!r}: write a function as \"schema.name\", \"schema.*\" or \"name\"")
        return value

    @field_validator("roles")
    @classmethod
    def _roles_are_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for who, role in (value or {}).items():
            _check_group_key(who)
            if not role or len(role) > 63 or "\x00" in role:
                raise ValueError(f"role for {who!r} must be a role name of 1-63 characters")
        return value


class RedisSettings(_Section):
    url: SecretStr | None = None
    context_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # A thread's turn lease: a replica that dies mid-turn holds its threads this long at most.
    lease_s: float = Field(default=15.0, ge=0.3, le=600)
    event_ttl_s: int = Field(default=6 * 3600, ge=60)  # a redelivered event within this time is ignored


class ContextSettings(_Section):
    max_history_turns: int = Field(default=40, ge=2)


class ApprovalSettings(_Section):
    expiry_s: int = Field(default=3600, ge=10)
    # How long a decided or expired action (and who decided it) stays answerable after its expiry.
    keep_decided_s: int = Field(default=24 * 3600, ge=60)


class UndoSettings(_Section):
    """Undo of an approved INSERT, UPDATE or DELETE (core.undo): the rows it touched are kept, before and
    after, in the database's own ``pgbot.undo`` table, within these bounds; a bigger change says on its
    approval card, before anyone approves it, that it cannot be undone. One section for every database:
    the bounds are about what pgbot stores, not about a database's data."""

    enabled: bool = True
    max_rows: int = Field(default=1000, ge=1, le=100_000)  # rows a change may touch and still be undone
    max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # the kept rows as JSON text, before and after
    valid_for_s: int = Field(default=24 * 3600, ge=60)  # the Undo button (and /undo) works this long after the run


class LimitsSettings(_Section):
    max_concurrent_turns: int = Field(default=64, ge=1)
    queue_per_thread: int = Field(default=100, ge=1)
    max_queued_turns: int = Field(default=1000, ge=0)
    # Longer SQL (from the model, a user or pg_stat_statements) is refused before it is parsed.
    max_sql_chars: int = Field(default=20_000, ge=100, le=1_000_000)  # waiting for a slot beyond this: a "busy" reply
    queue_timeout_s: float = Field(default=120.0, gt=0)  # waited this long for a slot: a "busy" reply
    schema_recheck_s: float = Field(default=5.0, ge=0)  # how often the catalog fingerprint is compared
    export_dir: Path = Path("./exports")
    export_max_bytes: int = Field(default=1 << 30, ge=1024)
    # On SIGTERM: in-flight turns get this long to finish; the rest are cancelled and their threads told.
    shutdown_grace_s: float = Field(default=20.0, ge=0, le=3600)
    # Rate limits and cost control (core.ops.quotas); 0 switches each one off, which is the default.
    user_messages_per_minute: int = Field(default=0, ge=0)  # per chat user, across every channel
    channel_messages_per_minute: int = Field(default=0, ge=0)  # per channel, every user together
    daily_tokens_per_workspace: int = Field(default=0, ge=0)  # LLM tokens per UTC day per Slack/Discord workspace


class BackupSettings(_Section):
    dir: Path = Path("./backups")  # each backup: the pg_dump file and its manifest (.json) beside it
    # pg_dump / pg_restore from this folder only; absent: PATH, /usr/lib/postgresql/*/bin, the pgserver wheel
    pg_bin_dir: Path | None = None
    timeout_s: float = Field(default=6 * 3600, gt=0)  # a dump or restore running longer is stopped
    progress_interval_s: float = Field(default=5.0, ge=0)  # at most one progress line per interval
    lock_wait_timeout_ms: int = Field(default=30_000, ge=1)  # waiting for a table lock longer fails the run


class ChartSettings(_Section):
    """Charts drawn from results (core.charts); size and DPI are bounded so one chart stays cheap to draw."""

    dir: Path | None = None  # where the terminal writes chart files; None: [limits] export_dir
    width_px: int = Field(default=1000, ge=300, le=2400)
    height_px: int = Field(default=600, ge=200, le=1600)
    dpi: int = Field(default=100, ge=50, le=200)
    max_categories: int = Field(default=20, ge=3, le=100)  # more bars: the largest ones, the rest as "Other"
    max_points: int = Field(default=2000, ge=50, le=20_000)  # more points: averaged in buckets (line) or sampled
    max_series: int = Field(default=8, ge=1, le=20)  # more lines: the largest ones, the rest left out
    from_question: bool = True  # "plot …", "chart …", "graph …" in a question draws the answer's result


class ScheduleSettings(_Section):
    """Scheduled reports and health checks (core.schedules), run by ``pgbot slack`` / ``pgbot discord``."""

    # IANA name (Europe/Berlin) new schedules' times are read in; absent: the database's TimeZone setting.
    # A schedule keeps the zone it was created with.
    timezone: str | None = None
    tick_s: float = Field(default=30.0, ge=1, le=600)  # how often each replica looks for due schedules
    min_interval_minutes: int = Field(default=5, ge=1, le=1440)  # a schedule running more often is refused
    max_per_user: int = Field(default=25, ge=1, le=1000)  # schedules one person may have per database
    # A run claimed by a replica that died is claimed again (and run, late) after this long; a run still
    # going at this point is cut off first, so two replicas never run it at once.
    claim_ttl_s: float = Field(default=900.0, ge=30, le=86400)
    late_after_s: float = Field(default=120.0, ge=0)  # a run starting later than this after its time says so

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone name such as Europe/Berlin or UTC") from None
        return value


class ObservabilitySettings(_Section):
    port: int | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"


class ChatSettings(_Section):
    """How answers look in Slack and Discord (the terminal always shows the SQL, dimmed)."""

    # "button": the SQL behind a "Show SQL" button (only the clicker sees it); "inline": under every answer.
    show_sql: Literal["button", "inline"] = "button"


class SlackSettings(_Section):
    mode: Literal["socket", "http"] = "socket"
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    http_port: int = 3000
    api_base_url: str = "https://slack.com/api/"
    allowed_channels: list[str] = Field(default_factory=list)  # channel ids (C…, G…, D…); empty: all
    allowed_teams: list[str] = Field(default_factory=list)  # workspace ids (T…) whose people pgbot serves; empty: all


# Where the Discord bot token may come from (load_settings reads DISCORD_TOKEN when the file sets none); the
# messages about a missing or rejected token name all three.
DISCORD_TOKEN_FROM = "DISCORD_TOKEN, PGBOT_DISCORD__TOKEN or [discord] token"


class DiscordSettings(_Section):
    token: SecretStr | None = None
    allowed_guilds: list[int] = Field(default_factory=list)  # empty: every guild the bot is in
    allowed_channels: list[int] = Field(default_factory=list)  # empty: every channel; threads go by their parent
    # discord.py's Route.BASE: Discord-compatible servers, proxies and tests; the gateway URL then comes from
    # that server's GET /gateway/bot.
    api_base_url: str | None = None


class Settings(BaseSettings):
    """All of pgbot's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="PGBOT_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    llm: LlmSettings = Field(default_factory=LlmSettings)
    accuracy: AccuracySettings = Field(default_factory=AccuracySettings)
    databases: dict[str, DatabaseSettings] = Field(default_factory=dict)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    undo: UndoSettings = Field(default_factory=UndoSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    backups: BackupSettings = Field(default_factory=BackupSettings)
    charts: ChartSettings = Field(default_factory=ChartSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)

    @model_validator(mode="after")
    def _one_default_database(self) -> Settings:
        for name in self.databases:
            if not _NAME_RE.match(name):
                raise ValueError(f"database name {name!r} must be letters, digits, '_' or '-'")
        defaults = [n for n, d in self.databases.items() if d.default]
        if len(defaults) > 1:
            raise ValueError(f"only one database may set default = true (found {', '.join(defaults)})")
        if not defaults and len(self.databases) > 1:
            raise ValueError("several databases are configured: mark one with default = true")
        return self

    @property
    def default_database(self) -> str | None:
        for name, db in self.databases.items():
            if db.default:
                return name
        return next(iter(self.databases), None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


_config_path: ContextVar[Path | None] = ContextVar("pgbot_config_path", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file chosen by :func:`load_settings`, expanding ``${ENV}`` references."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole document

    def __call__(self) -> dict[str, Any]:
        path = _config_path.get()
        if path is None or not path.exists():
            return {}
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        expanded: dict[str, Any] = _expand_env(data)
        return expanded


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV_REF_RE.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def resolve_config_path(path: Path | str | None) -> Path:
    if path:
        return Path(path)
    env = os.environ.get("PGBOT_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


def load_settings(path: Path | str | None = None, *, require_file: bool = False) -> Settings:
    """Load and validate settings, raising :class:`ConfigError` with one line per problem.

    ``.env`` is looked for where pgbot runs (the working directory, then its parents), beside the config the
    operator keeps there; not beside the installed package, where ``load_dotenv()`` alone would look."""
    load_dotenv(find_dotenv(usecwd=True), override=False)
    config_path = resolve_config_path(path)
    explicit = bool(path) or bool(os.environ.get("PGBOT_CONFIG"))
    if not config_path.exists() and (explicit or require_file):
        raise ConfigError(f"{config_path}: file not found (set --config or PGBOT_CONFIG)")
    token = _config_path.set(config_path)
    try:
        settings = Settings()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc, config_path)) from None
    except ValueError as exc:  # env values that are not valid JSON for complex fields
        raise ConfigError(f"{config_path}: {exc}") from None
    finally:
        _config_path.reset(token)
    # The variables the SDKs' own docs name work without a ${...} reference in the file.
    if settings.llm.api_key is None and os.environ.get("OPENAI_API_KEY", "").strip():
        settings.llm.api_key = SecretStr(os.environ["OPENAI_API_KEY"])
    if settings.discord.token is None and os.environ.get("DISCORD_TOKEN", "").strip():
        settings.discord.token = SecretStr(os.environ["DISCORD_TOKEN"].strip())
    return settings


def _describe_validation(exc: ValidationError, path: Path) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{path}: {key}: {msg}")
    return lines
