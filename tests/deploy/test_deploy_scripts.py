"""scripts/deploy.sh and scripts/health-check.sh, as far as this machine
(no Docker engine) lets them run."""
import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from oms_test import PG_PORT, REDIS_PORT, ROOT, free_port, running, wait_until


def run(*args, env=None):
    return subprocess.run([os.path.join(ROOT, "scripts", args[0]), *args[1:]], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), cwd=ROOT, timeout=60)


def health_rows(stdout):
    """health-check.sh's table, {check: (ok|FAIL, detail)}; every row between
    the header and the summary line must have the table's shape."""
    rows = {}
    for line in stdout.splitlines()[1:-1]:
        row = re.match(r"^(.{26}) (\S+)\s+(ok|FAIL)\s+(.+)$", line)
        assert row, line
        rows[row.group(1).strip()] = (row.group(3), row.group(4))
    return rows


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
    rows = health_rows(out.stdout)
    results = {name: result for name, (result, _) in rows.items()}
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


# --- the Grafana VM before the webapp VM exists ------------------------------------

ABSENT_WEBAPP = "10.255.255.1"   # an address nothing answers on: the webapp VM not built yet
ABSENT_GRAFANA = "10.255.255.2"


def checkout_copy(tmp_path):
    """What a fresh clone on a new VM holds, in a folder of its own: the
    deploy script then reads and writes only that copy's .env."""
    copy = tmp_path / "oms"
    copy.mkdir()
    for name in ("scripts", "infrastructure", "docs"):
        shutil.copytree(os.path.join(ROOT, name), copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in (".env.example", "docker-compose.yml", "docker-compose.grafana.yml"):
        shutil.copy(os.path.join(ROOT, name), copy / name)
    return copy


def no_docker(tmp_path):
    """A PATH whose `docker` only records that it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "docker"
    shim.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'docker-calls'}\nexit 1\n")
    shim.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin:/usr/sbin:/sbin"}


def dry_run(copy, role, tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("BIND_ADDRESS", "WEBAPP_HOST", "GRAFANA_HOST",
                                                               "COMPOSE_PROFILES")}
    return subprocess.run([str(copy / "scripts" / "deploy.sh"), "--dry-run", role], capture_output=True, text=True,
                          env=dict(clean, **no_docker(tmp_path), **env), cwd=copy, timeout=60)


def set_env(path, **values):
    lines = path.read_text().splitlines()
    for key, value in values.items():
        lines = [f"{key}={value}" if line.startswith(f"{key}=") else line for line in lines]
        if not any(line.startswith(f"{key}=") for line in lines):
            lines.append(f"{key}={value}")
    path.write_text("\n".join(lines) + "\n")


def test_a_fresh_grafana_vm_deploys_in_a_dry_run_without_the_webapp_vm(tmp_path):
    copy = checkout_copy(tmp_path)
    before = files_in(copy)
    out = dry_run(copy, "grafana", tmp_path, WEBAPP_HOST=ABSENT_WEBAPP, BIND_ADDRESS="127.0.0.1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rendered: both templates have every value they need" in out.stdout
    assert re.search(r"^would run: docker compose --env-file \S+ -f docker-compose.grafana.yml up -d$", out.stdout,
                     re.M), out.stdout
    assert 'judges only this VM\'s Prometheus targets, vm="grafana"' in out.stdout
    # a dry run changes nothing: no file left behind, no docker called
    assert files_in(copy) == before
    assert not (tmp_path / "docker-calls").exists()


def files_in(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("role, key, old, refused", [
    ("grafana", "PROMETHEUS_VERSION", "v2.55.1", True),    # cannot read storage.tsdb.retention
    ("grafana", "LOKI_VERSION", "3.2.1", True),            # ignores ruler_storage
    ("webapp", "POSTGRES_VERSION", "15.10-bookworm", True),  # its data is not where the volume now is
    ("grafana", "PROMETHEUS_VERSION", "v3.20.0", False),   # newer: the user's choice
    ("webapp", "PROMETHEUS_VERSION", "v2.55.1", False),    # not this VM's
])
def test_a_deploy_refuses_an_old_env_pinning_images_too_old_for_the_configs(tmp_path, role, key, old, refused):
    copy = checkout_copy(tmp_path)
    shutil.copy(copy / ".env.example", copy / ".env")
    set_env(copy / ".env", **{key: old, "BIND_ADDRESS": "127.0.0.1", "GRAFANA_ADMIN_PASSWORD": "x"})
    out = dry_run(copy, role, tmp_path)
    if refused:
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"{key}={old} (needs" in out.stderr and '"Versions"' in out.stderr, out.stderr
    else:
        assert out.returncode == 0, out.stdout + out.stderr


def test_a_dry_run_names_the_settings_an_old_env_lacks_and_adds_none(tmp_path):
    copy = checkout_copy(tmp_path)
    old = [line for line in (copy / ".env.example").read_text().splitlines()
           if not line.startswith(("BIND_ADDRESS=", "TRAEFIK_DASHBOARD_USERS="))]
    (copy / ".env").write_text("\n".join(old) + "\nGRAFANA_ADMIN_PASSWORD=x\n")
    before = (copy / ".env").read_text()
    out = dry_run(copy, "webapp", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "a deploy would add BIND_ADDRESS to .env" in out.stdout
    assert "a deploy would add TRAEFIK_DASHBOARD_USERS to .env" in out.stdout
    assert (copy / ".env").read_text() == before


def documented_two_vm_steps():
    """(role, {KEY: placeholder}) for each VM, in the order the Two VMs
    section of docs/DEPLOYMENT.md gives them."""
    with open(os.path.join(ROOT, "docs", "DEPLOYMENT.md")) as f:
        doc = f.read()
    section = doc.split("## Two VMs, step by step", 1)[1].split("\n## ", 1)[0]
    steps, settings = [], {}
    for line in section.splitlines():
        edit = re.match(r"\s*# edit \.env: (.*)", line)
        if edit:
            settings.update(re.findall(r"([A-Z_]+)=(<[^>]+>|\S+?)(?:,|$|\s)", edit.group(1)))
        deploy = re.match(r"\s*scripts/deploy\.sh (\w+)\s*$", line)
        if deploy:
            steps.append((deploy.group(1), settings))
            settings = {}
    return steps


def test_the_documented_two_vm_order_deploys_in_a_dry_run(tmp_path):
    steps = documented_two_vm_steps()
    assert [role for role, _ in steps] == ["grafana", "webapp"], steps
    addresses = {"<webapp VM address>": ABSENT_WEBAPP, "<Grafana VM address>": ABSENT_GRAFANA,
                 "<this VM's private address>": "127.0.0.1"}
    for role, settings in steps:
        vm = tmp_path / role
        vm.mkdir()
        copy = checkout_copy(vm)
        shutil.copy(copy / ".env.example", copy / ".env")
        values = {key: addresses.get(value, "lab-test-value") for key, value in settings.items()}
        assert set(values) >= {"BIND_ADDRESS", "GRAFANA_HOST" if role == "webapp" else "WEBAPP_HOST"}, settings
        set_env(copy / ".env", **values)
        out = dry_run(copy, role, vm)
        assert out.returncode == 0, (role, out.stdout + out.stderr)
        file = "docker-compose.yml" if role == "webapp" else "docker-compose.grafana.yml"
        assert re.search(rf"^would run: docker compose --env-file \.env -f {file} up -d", out.stdout, re.M), out.stdout
        assert "one-host mode" not in out.stdout, out.stdout   # the other VM's address is set
        assert not (vm / "docker-calls").exists()
        if role == "webapp":
            # its own Node Exporter and cAdvisor run on a VM of its own, and
            # .env keeps the profile for later `docker compose` commands
            assert "COMPOSE_PROFILES=host-agents" in out.stdout, out.stdout
            assert "a deploy would set COMPOSE_PROFILES=host-agents in .env" in out.stdout, out.stdout


def test_one_host_refuses_the_webapp_host_agents(tmp_path):
    copy = checkout_copy(tmp_path)
    out = dry_run(copy, "single", tmp_path, COMPOSE_PROFILES="host-agents", GRAFANA_ADMIN_PASSWORD="x")
    assert out.returncode == 1 and "remove host-agents" in out.stderr, out.stdout + out.stderr


# --- the Grafana VM's health check judges its own targets --------------------------

def prometheus_with(tmp_path, port, jobs):
    """Debian's Prometheus scraping itself (vm=grafana) and the given
    (job, vm, address) targets, every second."""
    config = {"global": {"scrape_interval": "1s"},
              "scrape_configs": [{"job_name": "prometheus",
                                  "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"vm": "grafana"}}]}]
              + [{"job_name": job, "static_configs": [{"targets": [address], "labels": {"vm": vm}}]}
                 for job, vm, address in jobs]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen(["prometheus", f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def grafana_health(port, expected_targets):
    """health-check.sh grafana against that Prometheus, once every target
    has been scraped (the other Grafana VM components do not run here)."""
    def scraped():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query=count(up)", timeout=5) as res:
                result = json.load(res)["data"]["result"]
        except OSError:
            return None
        return result and result[0]["value"][1] == str(expected_targets)
    wait_until(scraped, 30, interval=0.5, what=f"{expected_targets} targets scraped")
    out = run("health-check.sh", "grafana", "127.0.0.1", env={
        "PROMETHEUS_PORT": str(port), "GRAFANA_PORT": str(free_port()), "ALERTMANAGER_PORT": str(free_port()),
        "LOKI_PORT": str(free_port()), "TEMPO_PORT": str(free_port())})
    return out, health_rows(out.stdout)


def test_the_grafana_check_judges_only_its_own_vms_targets(tmp_path):
    port = free_port()
    webapp_down = [("order", "webapp", f"{ABSENT_WEBAPP}:8001"), ("node", "webapp", f"127.0.0.1:{free_port()}")]
    prometheus = prometheus_with(tmp_path, port, webapp_down)
    try:
        out, rows = grafana_health(port, 3)
    finally:
        prometheus.terminate()
        prometheus.wait(10)
    assert rows["prometheus ready"][0] == "ok"
    assert rows["prometheus targets"] == ("ok", "all 1 vm=grafana targets up"), out.stdout
    assert rows["webapp targets (info)"] == ("ok", "0 of 2 up; judged on the webapp VM"), out.stdout
    assert not [name for name in rows if name.startswith("target ")], out.stdout


def test_the_grafana_check_fails_on_a_down_target_of_its_own_vm(tmp_path):
    port = free_port()
    prometheus = prometheus_with(tmp_path, port, [("loki", "grafana", f"127.0.0.1:{free_port()}"),
                                                  ("order", "webapp", f"{ABSENT_WEBAPP}:8001")])
    try:
        out, rows = grafana_health(port, 3)
    finally:
        prometheus.terminate()
        prometheus.wait(10)
    assert rows["target loki"][0] == "FAIL", out.stdout
    assert "prometheus targets" not in rows and "target order" not in rows, out.stdout
    assert out.returncode == 1
