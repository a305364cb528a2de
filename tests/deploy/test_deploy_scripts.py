"""scripts/deploy.sh and scripts/health-check.sh, as far as this machine
(no Docker engine) lets them run."""
import os
import re
import subprocess

from oms_test import PG_PORT, REDIS_PORT, ROOT, free_port, running


def run(*args, env=None):
    return subprocess.run([os.path.join(ROOT, "scripts", args[0]), *args[1:]], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), cwd=ROOT, timeout=60)


def test_deploy_refuses_an_unknown_role():
    out = run("deploy.sh", "everything")
    assert out.returncode == 2 and "usage" in out.stderr


def test_deploy_stops_at_missing_prerequisites_without_touching_anything(tmp_path):
    before = os.path.exists(os.path.join(ROOT, ".env"))
    # no docker at all on PATH
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("bash", "awk", "head", "df", "cat", "env"):
        path = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        os.symlink(path, fake_bin / tool)
    out = run("deploy.sh", "webapp", env={"PATH": str(fake_bin)})
    assert out.returncode == 1 and "docker is not installed" in out.stderr, out.stderr
    # a docker client without an engine (this machine), or no docker at all;
    # never on a machine where Docker works: deploy.sh would really deploy
    engine = subprocess.run(["sh", "-c", "docker info"], capture_output=True)
    if engine.returncode != 0:
        out = run("deploy.sh", "grafana")
        assert out.returncode == 1 and out.stderr.startswith("deploy: "), out.stderr
    assert os.path.exists(os.path.join(ROOT, ".env")) == before


def test_health_check_tells_working_from_broken_endpoints():
    """`native` role against the test stack: PostgreSQL, Redis and the two
    services are up; the gateway and RabbitMQ are not (the tests do not
    start them). Each shows as such, and the exit status says "failed"."""
    with running("inventory", "user", "order", "payment") as services:
        out = run("health-check.sh", "native", env={
            "INVENTORY_PORT": str(services["inventory"].port), "USER_PORT": str(services["user"].port),
            "ORDER_PORT": str(services["order"].port), "PAYMENT_PORT": str(services["payment"].port),
            "PG_PORT": str(PG_PORT), "REDIS_PORT": str(REDIS_PORT), "GATEWAY_PORT": str(free_port()),
            "AMQP_PORT": str(free_port()), "RABBITMQ_PROMETHEUS_PORT": str(free_port())})
    rows = [re.match(r"^(.{26}) (\S+)\s+(ok|FAIL)\s+(.+)$", line) for line in out.stdout.splitlines()[1:-1]]
    assert all(rows), out.stdout
    results = {row.group(1).strip(): row.group(3) for row in rows}
    assert out.stdout.splitlines()[0].split() == ["CHECK", "TARGET", "RESULT", "DETAIL"]
    for name in ("inventory ready", "user ready", "order ready", "payment ready", "inventory metrics",
                 "user metrics", "order metrics", "payment metrics", "postgres", "redis"):
        assert results[name] == "ok", out.stdout
    for name in ("gateway route", "rabbitmq amqp", "rabbitmq metrics"):
        assert results[name] == "FAIL", out.stdout
    assert rows and out.returncode == 1 and out.stdout.strip().endswith("3 check(s) failed")


def test_health_check_refuses_an_unknown_role():
    out = run("health-check.sh", "everything")
    assert out.returncode == 2 and "usage" in out.stderr
