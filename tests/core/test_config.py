"""Config loading: precedence, ${ENV} references, and one clear line per problem (file and key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pgbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
    settings = load_settings(ROOT / "pgbot.example.toml")
    assert settings.default_database == "shop"
    assert settings.llm.api_key is not None and settings.llm.api_key.get_secret_value() == "sk-example"
    roles = settings.databases["shop"].roles
    assert roles is not None and list(roles.items()) == [  # in file order: the first matching guild role wins
        ("slack:U024BE7LH", "analyst"), ("discord:80351110224678912", "dba"), ("terminal:alice", "dba"),
        ("discord-role:1187000000000000001", "analyst"), ("discord-role:1187000000000000002", "dba"),
        ("*", "readonly"),
    ]


def test_environment_overrides_file_and_env_refs_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[llm]\nmodel = "from-file"\napi_key = "${MY_KEY}"\n[databases.a]\ndsn = "postgresql://x/a"\n')
    monkeypatch.setenv("MY_KEY", "sk-from-env")
    monkeypatch.setenv("PGBOT_LLM__MODEL", "from-env")
    monkeypatch.setenv("PGBOT_DATABASES__A__MAX_ROWS", "42")
    settings = load_settings(path)
    assert settings.llm.model == "from-env"
    assert settings.llm.api_key is not None and settings.llm.api_key.get_secret_value() == "sk-from-env"
    assert settings.databases["a"].max_rows == 42
    assert settings.databases["a"].dsn.get_secret_value() == "postgresql://x/a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[llm\nmodel=1", "not valid TOML"),
        ('[databases.a]\nmax_rows = 5\n', "databases.a.dsn: required key is missing"),
        ('[databases.a]\ndsn = "postgresql://x/a"\nmax_rows = "many"\n',
         "databases.a.max_rows: Input should be a valid integer"),
        ('[databases.a]\ndsn = "postgresql://x/a"\nmax_rowz = 5\n', "databases.a.max_rowz: unknown key"),
        ('[llm]\ntimeout_s = -1\n', "llm.timeout_s: Input should be greater than 0"),
        ('[databases.a]\ndsn = "postgresql://x/a"\n[databases.b]\ndsn = "postgresql://y/b"\n',
         "mark one with default = true"),
        ('[databases.a]\ndsn = "postgresql://x/a"\ndefault = true\n'
         '[databases.b]\ndsn = "postgresql://y/b"\ndefault = true\n', "only one database"),
        ('[databases."bad name!"]\ndsn = "postgresql://x/a"\n', "database name 'bad name!'"),
        ('[llm]\ntool_mode = "telepathy"\n', "llm.tool_mode: Input should be 'auto', 'native' or 'text'"),
    ],
)
def test_each_problem_is_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert any(expected in line for line in caught.value.problems), caught.value.problems
    assert all(line.startswith(str(path)) and "\n" not in line for line in caught.value.problems)


def test_secrets_never_appear_in_config_errors(tmp_path: Path) -> None:
    path = write(tmp_path, '[llm]\napi_key = "sk-very-secret"\ntimeout_s = "soon"\n'
                           '[databases.a]\ndsn = "postgresql://u:hunter2pass@h/a"\nmax_rows = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = "\n".join(caught.value.problems)
    assert "sk-very-secret" not in text and "hunter2pass" not in text
    assert "llm.timeout_s" in text and "databases.a.max_rows" in text
    assert "hunter2pass" not in repr(load_settings(write(tmp_path, '[databases.a]\ndsn = "postgresql://u:hunter2pass@h/a"\n')))


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_dotenv_is_read_from_where_pgbot_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``.env`` beside the config in the working directory is read (not one beside the package)."""
    for name in ("PGBOT_LLM__MODEL", "SHOP_DSN"):
        monkeypatch.delenv(name, raising=False)  # restored (removed) after the test, though .env sets them
    (tmp_path / ".env").write_text("PGBOT_LLM__MODEL=from-dotenv\nSHOP_DSN=postgresql://pgbot@db/shop\n",
                                   encoding="utf-8")
    write(tmp_path, '[databases.shop]\ndsn = "${SHOP_DSN}"\n')
    work = tmp_path / "sub"  # a parent's .env counts too, as python-dotenv looks upward from the cwd
    work.mkdir()
    monkeypatch.chdir(work)
    settings = load_settings(tmp_path / "pgbot.toml")
    assert settings.llm.model == "from-dotenv"
    assert settings.databases["shop"].dsn.get_secret_value() == "postgresql://pgbot@db/shop"


def test_dotenv_never_overrides_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("PGBOT_LLM__MODEL=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("PGBOT_LLM__MODEL", "from-env")
    monkeypatch.chdir(tmp_path)
    assert load_settings(write(tmp_path, "")).llm.model == "from-env"


def test_discord_token_falls_back_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "  discord-secret-token ")
    settings = load_settings(write(tmp_path, "[discord]\nallowed_guilds = [1]\n"))
    assert settings.discord.token is not None and settings.discord.token.get_secret_value() == "discord-secret-token"
    assert "discord-secret-token" not in repr(settings) and "discord-secret-token" not in str(settings.discord)
    # the file's own token wins over the variable
    settings = load_settings(write(tmp_path, '[discord]\ntoken = "from-file"\n'))
    assert settings.discord.token is not None and settings.discord.token.get_secret_value() == "from-file"
    monkeypatch.setenv("DISCORD_TOKEN", "   ")  # blank: no token, so the bot says "discord.token is not set"
    assert load_settings(write(tmp_path, "")).discord.token is None
