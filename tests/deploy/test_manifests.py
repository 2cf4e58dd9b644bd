"""deploy/: the Kubernetes manifests and docker-compose.yml parse, agree with each other and with pgbot's config,
and the compose healthcheck command really probes a running /healthz."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.observability import ObservabilityServer
from bot.wiring import build_agent
from core import Settings
from core.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def k8s_objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                found[doc["kind"]] = doc
    return found


@pytest.fixture
def config_from_configmap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ConfigMap's pgbot.toml loaded by core.config, with the Secret's keys in the environment."""
    objects = k8s_objects()
    for key, value in objects["Secret"]["stringData"].items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "pgbot.toml"
    path.write_text(objects["ConfigMap"]["data"]["pgbot.toml"])
    return load_settings(path)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_deployment_probes_and_service_use_the_configured_port(config_from_configmap: Settings) -> None:
    objects = k8s_objects()
    deployment = objects["Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    port = config_from_configmap.observability.port
    assert port is not None
    assert spec["replicas"] == 2
    assert container["ports"] == [{"name": "metrics", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["timeoutSeconds"] > 5  # /readyz gives each dependency up to 5 s
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert spec["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert Path(env["PGBOT_CONFIG"]).parent == Path(mounts["config"])
    assert {v["name"]: v.get("configMap", {}).get("name") for v in pod["volumes"]}["config"] == "pgbot-config"
    assert container["envFrom"] == [{"secretRef": {"name": objects["Secret"]["metadata"]["name"]}}]
    # read-only root filesystem: everything pgbot writes goes under the /tmp emptyDir
    assert str(config_from_configmap.limits.export_dir).startswith(mounts["tmp"])
    assert str(config_from_configmap.backups.dir).startswith(mounts["tmp"])

    service, pdb = objects["Service"], objects["PodDisruptionBudget"]
    labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics"}]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < spec["replicas"]


def test_configmap_holds_no_secret_and_the_secret_fills_every_reference(config_from_configmap: Settings) -> None:
    settings = config_from_configmap
    secret = k8s_objects()["Secret"]["stringData"]
    assert settings.llm.api_key is not None and settings.llm.api_key.get_secret_value() == secret["OPENAI_API_KEY"]
    assert settings.databases["shop"].dsn.get_secret_value() == secret["SHOP_DATABASE_URL"]
    assert settings.redis.url is not None and settings.redis.url.get_secret_value() == secret["REDIS_URL"]
    assert settings.slack.bot_token is not None and settings.slack.app_token is not None
    assert settings.discord.token is not None and settings.discord.token.get_secret_value() == secret["DISCORD_TOKEN"]
    toml = k8s_objects()["ConfigMap"]["data"]["pgbot.toml"]
    assert all(value not in toml for value in secret.values())
    assert not any(key.startswith("PGBOT_") for key in secret)  # PGBOT_* would be read as settings


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_services_have_healthchecks_and_wait_for_each_other() -> None:
    services = compose()["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    bot = services["pgbot"]
    assert bot["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                 "redis": {"condition": "service_healthy"}}
    port = load_settings(ROOT / "deploy" / "pgbot.toml").observability.port
    assert bot["ports"] == [f"{port}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in bot["healthcheck"]["test"][-1]


async def test_compose_healthcheck_command_probes_a_live_healthz(fresh_db: str) -> None:
    """Run the exact command docker would, against a real ObservabilityServer (port swapped for a free one)."""
    test = compose()["services"]["pgbot"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    port = load_settings(ROOT / "deploy" / "pgbot.toml").observability.port
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}))
    server = ObservabilityServer(agent, host="127.0.0.1", port=0)
    await server.start()
    try:
        command = [sys.executable, "-c", test[3].replace(f":{port}/", f":{server.port}/")]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        up, stderr = await run(command, env)
        assert up == 0, stderr
    finally:
        await server.stop()
        await agent.aclose()
    down, _ = await run(command, env)
    assert down != 0


async def run(command: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, stderr


def test_compose_bot_writes_into_its_volume_and_outlasts_the_shutdown_grace() -> None:
    """The image runs as uid 10001 with a root-owned /app: exports and backups need the pgbotdata volume, and
    docker's SIGKILL must come after [limits] shutdown_grace_s so in-flight turns can finish."""
    bot = compose()["services"]["pgbot"]
    settings = load_settings(ROOT / "deploy" / "pgbot.toml")
    named = {target: source for source, target, *_ in (v.split(":") for v in bot["volumes"])
             if not source.startswith((".", "/"))}
    assert named, "no named volume for the bot's files"
    assert any(settings.limits.export_dir.is_relative_to(t) for t in named)
    assert any(settings.backups.dir.is_relative_to(t) for t in named)
    assert int(bot["stop_grace_period"].removesuffix("s")) > settings.limits.shutdown_grace_s


def test_image_user_matches_kubernetes_and_the_build_context_leaves_out_secrets() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    uid = k8s_objects()["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert f"USER {uid}:{uid}" in dockerfile.splitlines()
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"  # everything out, then only what the Dockerfile copies back in
    allowed = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    copied = {part.rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line
              for part in line.split()[1:-1]}
    assert copied == allowed and not allowed & {".env", ".venv", ".git"}


# --- issue 13: safe defaults in every shipped file -------------------------------------------------------------

SHIPPED_CONFIGS = ("deploy/pgbot.toml", "deploy/k8s/configmap.yaml", "pgbot.example.toml")


def shipped_settings(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    if name.endswith(".yaml"):
        objects = k8s_objects()
        for key, value in objects["Secret"]["stringData"].items():
            monkeypatch.setenv(key, value)
        path = tmp_path / "pgbot.toml"
        path.write_text(objects["ConfigMap"]["data"]["pgbot.toml"])
        return load_settings(path)
    return load_settings(ROOT / name)


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_shipped_configs_map_roles_name_approvers_and_pass_the_safety_checks(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.check_config import chat_platforms, unsafe_settings

    settings = shipped_settings(name, tmp_path, monkeypatch)
    assert chat_platforms(settings), "a shipped config serves a chat platform: the checks below must apply"
    findings = unsafe_settings(settings)
    assert [line for line in findings if not line.startswith("ok")] == [], findings
    for db in settings.databases.values():
        assert db.roles, "no roles table: every chat user would run as the login role"
        assert db.approvers.users or db.approvers.roles
        assert db.approvers.allow_self_approval is False
        dsn_user = db.dsn.get_secret_value().split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
        assert dsn_user and dsn_user != "postgres"


def test_compose_logs_in_as_the_bot_role_not_the_admin() -> None:
    services = compose()["services"]
    postgres, bot = services["postgres"], services["pgbot"]
    admin = postgres["environment"]["POSTGRES_USER"]
    login = bot["environment"]["PGBOT_DATABASES__SHOP__DSN"].split("://", 1)[1].split(":", 1)[0]
    assert login == "pgbot" != admin
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    assert "PGBOT_DB_PASSWORD" in bot["environment"]["PGBOT_DATABASES__SHOP__DSN"]
    assert "PGBOT_DB_PASSWORD" in (ROOT / "deploy" / "postgres-init" / "20-pgbot-password.sh").read_text()


async def test_compose_init_sql_makes_a_login_check_config_calls_safe(fresh_db: str) -> None:
    """Run deploy/postgres-init's SQL on a real server (in a transaction that is rolled back: roles are
    cluster-wide), become its login, and ask the database what check-config asks: no superuser, no stronger
    membership, every mapped role reachable, "*" read-only; and the mapped roles really read and write."""
    import asyncpg

    from core.diagnostics.login_check import login_report

    settings = load_settings(ROOT / "deploy" / "pgbot.toml")
    roles = settings.databases["shop"].roles or {}
    conn = await asyncpg.connect(fresh_db)
    transaction = conn.transaction()
    await transaction.start()
    try:
        # Everything below is rolled back: the roles never outlive the test.
        await conn.execute((ROOT / "deploy" / "postgres-init" / "10-pgbot-roles.sql").read_text())
        await conn.execute("SET SESSION AUTHORIZATION pgbot")
        report = await login_report(conn, mapped=roles.values(), writes_asked=[roles["*"]])
        assert report.problems() == [] and report.writing_roles == (), report
        await conn.execute("CREATE TABLE public.t (id int)")  # like `pgbot demo --load-sample`
        await conn.execute("CREATE SCHEMA pgbot")  # like the audit trail
        await conn.execute(f"SET ROLE {roles['*']}")
        assert await conn.fetchval("SELECT count(*) FROM public.t") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO public.t VALUES (1)")
    finally:
        await transaction.rollback()
        await conn.close()
    writer = {role for key, role in roles.items() if key != "*"}
    assert writer == {"pgbot_writer"}
