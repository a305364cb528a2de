"""The Grafana VM's configuration: the rendered Prometheus and Alertmanager
configs pass their own tools, the real (Debian) Prometheus scrapes the
natively running services with that config, Grafana's provisioning links
data sources that exist, and RabbitMQ's definitions hold DESIGN's topology."""
import base64
import contextlib
import hashlib
import json
import os
import subprocess
import urllib.request

import pytest
import yaml

from compose import read_env_file
from oms_test import PG_PORT, PG_SUPERUSER_PASSWORD, REDIS_PORT, ROOT, free_port, running, wait_until

RENDER = os.path.join(ROOT, "infrastructure", "render-template.sh")
RULES = os.path.join(ROOT, "infrastructure", "prometheus", "rules")
GRAFANA = os.path.join(ROOT, "infrastructure", "grafana")


def render(template, **env):
    out = subprocess.run([RENDER, os.path.join(ROOT, template)], env=dict(os.environ, **env), capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def for_debian_prometheus(text):
    """The config without its storage block, the one key Debian's Prometheus
    2.42 does not know (3.x's storage.tsdb.retention, which the Compose
    image reads); everything else is checked as the image reads it."""
    doc = yaml.safe_load(text)
    assert doc.pop("storage") == {"tsdb": {"retention": {"time": "15d"}}}
    return yaml.safe_dump(doc)


def render_prometheus(**env):
    return render("infrastructure/prometheus/prometheus.yml.tmpl", **dict(
        {"BIND_ADDRESS": "10.0.0.6", "PROMETHEUS_RULES_DIR": RULES}, **env))


def test_render_template_fills_in_and_refuses_missing_values(tmp_path):
    template = write(tmp_path, "t.tmpl", 'a: "${ONE}" b: ${TWO:-2} c: ${1} d: $$x\n')
    out = subprocess.run([RENDER, template], env={"ONE": "1", "PATH": os.environ["PATH"]}, capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout == 'a: "1" b: 2 c: ${1} d: $$x\n'
    out = subprocess.run([RENDER, template], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert out.returncode != 0 and "ONE is not set" in out.stderr


def test_rendered_prometheus_config_and_rules_pass_promtool(tmp_path):
    config = write(tmp_path, "prometheus.yml", for_debian_prometheus(render_prometheus(WEBAPP_HOST="10.0.0.5")))
    check = subprocess.run(["promtool", "check", "config", config], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = sorted(os.path.join(RULES, f) for f in os.listdir(RULES))
    check = subprocess.run(["promtool", "check", "rules", *rules], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = yaml.safe_load(open(config))
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    assert jobs["inventory"]["static_configs"][0]["targets"] == ["10.0.0.5:8002"]
    assert jobs["user"]["static_configs"][0]["targets"] == ["10.0.0.5:8004"]
    for job in ("traefik", "rabbitmq", "postgres", "redis", "alloy", "node", "cadvisor", "prometheus", "alertmanager",
                "loki", "tempo", "grafana"):
        assert job in jobs, job
    # every target says which VM it is on: the health check and the
    # dashboards select on it
    for job in jobs.values():
        for static in job["static_configs"]:
            assert static["labels"]["vm"] in ("webapp", "grafana"), job["job_name"]
    # both VMs' hosts and containers; this VM's Node Exporter on its own
    # address (host networking), the webapp VM's on the webapp's
    assert {c["labels"]["vm"] for c in jobs["node"]["static_configs"]} == {"webapp", "grafana"}
    assert {c["labels"]["vm"] for c in jobs["cadvisor"]["static_configs"]} == {"webapp", "grafana"}
    assert [c["targets"] for c in jobs["node"]["static_configs"]] == [["10.0.0.5:9100"], ["10.0.0.6:9100"]]


def test_retention_is_set_in_the_config_not_by_the_deprecated_flag():
    doc = yaml.safe_load(render_prometheus(WEBAPP_HOST="10.0.0.5", PROMETHEUS_RETENTION="30d"))
    assert doc["storage"]["tsdb"]["retention"]["time"] == "30d"
    with open(os.path.join(ROOT, "docker-compose.grafana.yml")) as f:
        prometheus = yaml.safe_load(f)["services"]["prometheus"]
    assert not [a for a in prometheus["command"] if "retention" in a]
    assert "PROMETHEUS_RETENTION" in prometheus["environment"]


def test_rendered_alertmanager_config_passes_amtool(tmp_path):
    config = write(tmp_path, "alertmanager.yml",
                   render("infrastructure/alertmanager/alertmanager.yml.tmpl", WEBAPP_HOST="10.0.0.5"))
    check = subprocess.run(["amtool", "check-config", config], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = yaml.safe_load(open(config))
    urls = [w["url"] for r in doc["receivers"] for w in r.get("webhook_configs", [])]
    assert urls == ["http://10.0.0.5:8005/api/notifications/alerts"]
    assert any(r.get("email_configs") for r in doc["receivers"])


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as res:
        return json.load(res)


@pytest.fixture
def native_services():
    with running("inventory", "user", "order", "payment", "notification") as services:
        yield services


@pytest.fixture
def native_exporters(tmp_path):
    """Debian's Node Exporter and PostgreSQL/Redis exporters, pointed at the
    test stack, as the webapp VM runs them in containers."""
    ports = {name: free_port() for name in ("node", "postgres", "redis")}
    commands = {
        "node": ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{ports['node']}"],
        "postgres": ["prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{ports['postgres']}"],
        "redis": ["prometheus-redis-exporter", f"-web.listen-address=127.0.0.1:{ports['redis']}",
                  f"-redis.addr=redis://127.0.0.1:{REDIS_PORT}"],
    }
    env = dict(os.environ, DATA_SOURCE_NAME=f"postgresql://postgres:{PG_SUPERUSER_PASSWORD}@127.0.0.1:{PG_PORT}/oms"
                                           "?sslmode=disable")
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{name}.log", "wb"))
                 for name, command in commands.items()]
    yield ports
    for process in processes:
        process.terminate()
        process.wait(10)


NATIVE_JOBS = ("order", "inventory", "payment", "user", "notification", "node", "postgres", "redis")


def test_native_prometheus_scrapes_the_running_services(tmp_path, native_services, native_exporters):
    """The real Prometheus (Debian's) with the config the Grafana VM uses,
    rendered for this machine: every webapp job that runs here is up."""
    port = free_port()
    config = write(tmp_path, "prometheus.yml", for_debian_prometheus(render_prometheus(
        WEBAPP_HOST="127.0.0.1", BIND_ADDRESS="127.0.0.1",
        INVENTORY_PORT=str(native_services["inventory"].port), USER_PORT=str(native_services["user"].port),
        ORDER_PORT=str(native_services["order"].port), PAYMENT_PORT=str(native_services["payment"].port),
        NOTIFICATION_PORT=str(native_services["notification"].port),
        NODE_EXPORTER_PORT=str(native_exporters["node"]), POSTGRES_EXPORTER_PORT=str(native_exporters["postgres"]),
        REDIS_EXPORTER_PORT=str(native_exporters["redis"]),
        SCRAPE_INTERVAL="1s", ALERTMANAGER_ADDRESS=f"127.0.0.1:{free_port()}")))
    with native_prometheus(tmp_path, config, port):
        api = f"http://127.0.0.1:{port}/api/v1"

        def health():
            try:
                targets = get_json(f"{api}/targets")["data"]["activeTargets"]
            except OSError:
                return None
            webapp = {t["labels"]["job"]: t["health"] for t in targets if t["labels"]["vm"] == "webapp"}
            return webapp if all(webapp.get(job) == "up" for job in NATIVE_JOBS) else None

        webapp = wait_until(health, 30, interval=0.5, what=f"{NATIVE_JOBS} targets up")
        # Traefik, cAdvisor, RabbitMQ and Alloy do not run in this test
        assert set(webapp) == set(NATIVE_JOBS) | {"traefik", "cadvisor", "rabbitmq", "alloy"}
        # a recording rule evaluates over the services' real metrics
        groups = {g["name"] for g in get_json(f"{api}/rules")["data"]["groups"]}
        assert {"oms-http", "oms-availability", "oms-security"} <= groups

        def evaluated_rules():
            rules = [r for g in get_json(f"{api}/rules")["data"]["groups"] for r in g["rules"]]
            return rules if all(r["health"] != "unknown" for r in rules) else None

        rules = wait_until(evaluated_rules, 60, interval=1, what="every rule evaluated once")
        broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert not broken, broken  # every rule's query runs against the real series
        samples = wait_until(lambda: get_json(f"{api}/query?query=up%7Bjob%3D%22user%22%7D")["data"]["result"],
                             10, what="user series")
        assert samples[0]["metric"]["vm"] == "webapp" and samples[0]["value"][1] == "1"
        # the exporters see what they export
        for query, name in (("pg_up", "postgres"), ("redis_up", "redis")):
            result = wait_until(lambda: get_json(f"{api}/query?query={query}")["data"]["result"], 10, what=query)
            assert result[0]["value"][1] == "1", (name, result)


@contextlib.contextmanager
def native_prometheus(tmp_path, config, port):
    log = open(tmp_path / "prometheus.log", "wb")
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--enable-feature=exemplar-storage",
         "--web.enable-remote-write-receiver"], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield prometheus
    finally:
        prometheus.terminate()
        prometheus.wait(10)
        log.close()


def targets_of(port, what):
    def ready():
        try:
            data = get_json(f"http://127.0.0.1:{port}/api/v1/targets?state=any")["data"]
        except OSError:
            return None
        return data if data["activeTargets"] else None
    return wait_until(ready, 30, interval=0.5, what=what)


def vm_and_job(target):
    labels = target.get("labels") or target["discoveredLabels"]
    return labels.get("vm"), labels["job"]


@pytest.mark.parametrize("webapp_host, scraped_twice", [("host.docker.internal", False), ("10.0.0.5", True)])
def test_one_host_is_not_scraped_twice_under_two_vm_labels(tmp_path, webapp_host, scraped_twice):
    """On one host the Grafana stack's Node Exporter and cAdvisor report the
    machine; the webapp targets of the same host are dropped by relabelling,
    in the real Prometheus. Two VMs keep both."""
    port = free_port()
    config = write(tmp_path, "prometheus.yml", for_debian_prometheus(render_prometheus(
        WEBAPP_HOST=webapp_host, ALERTMANAGER_ADDRESS=f"127.0.0.1:{free_port()}")))
    with native_prometheus(tmp_path, config, port):
        data = targets_of(port, "targets listed")
    active = {vm_and_job(t) for t in data["activeTargets"]}
    dropped = {(t["discoveredLabels"].get("vm"), t["discoveredLabels"]["job"]) for t in data["droppedTargets"]}
    for job in ("node", "cadvisor"):
        assert ("grafana", job) in active
        assert (("webapp", job) in active) == scraped_twice, job
        assert (("webapp", job) in dropped) != scraped_twice, job
    # nothing else is dropped: the services, stores and Alloy stay scraped
    for job in ("order", "inventory", "payment", "user", "traefik", "rabbitmq", "postgres", "redis", "alloy"):
        assert ("webapp", job) in active, job
    assert len(dropped) == (0 if scraped_twice else 2)


def load_yaml(*parts):
    with open(os.path.join(*parts)) as f:
        return yaml.safe_load(f)


def uid_references(node):
    """Every datasource uid a provisioning file or dashboard points at."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasourceUid" and isinstance(value, str):
                yield value
            elif key == "datasource" and isinstance(value, dict) and "uid" in value:
                yield value["uid"]
            else:
                yield from uid_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from uid_references(item)


def test_grafana_provisioning_links_datasources_that_exist():
    sources = load_yaml(GRAFANA, "provisioning", "datasources", "datasources.yml")["datasources"]
    uids = {d["uid"] for d in sources}
    assert uids == {"prometheus", "loki", "tempo", "alertmanager"}
    by_uid = {d["uid"]: d for d in sources}
    # the correlations this lab teaches
    assert by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "tempo"
    assert by_uid["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "tempo"
    tempo = by_uid["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus" and tempo["nodeGraph"]["enabled"]
    referenced = set(uid_references(sources))
    # dashboards
    provider = load_yaml(GRAFANA, "provisioning", "dashboards", "dashboards.yml")["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = os.listdir(os.path.join(GRAFANA, "dashboards"))
    assert dashboards
    for name in dashboards:
        with open(os.path.join(GRAFANA, "dashboards", name)) as f:
            dashboard = json.load(f)
        assert dashboard["uid"] and dashboard["panels"]
        referenced |= set(uid_references(dashboard))
    assert referenced and referenced <= uids, referenced - uids
    # alerting provisioning parses and names a contact point its policy uses
    alerting = load_yaml(GRAFANA, "provisioning", "alerting", "contact-points.yml")
    names = {c["name"] for c in alerting["contactPoints"]}
    assert alerting["policies"][0]["receiver"] in names


def test_the_uid_check_would_catch_a_dangling_reference():
    assert set(uid_references({"panels": [{"datasource": {"uid": "nope"}}]})) == {"nope"}
    assert set(uid_references({"a": [{"datasourceUid": "x"}]})) == {"x"}


def test_loki_and_tempo_configs():
    loki = load_yaml(ROOT, "infrastructure", "loki", "loki.yml")
    assert loki["ruler"]["enable_api"] and loki["ruler"]["alertmanager_url"].startswith("http://alertmanager:9093")
    # rules are found through ruler_storage (ruler.storage is deprecated) in
    # the folder the Compose file mounts the rules at
    assert "storage" not in loki["ruler"] and "enable_alertmanager_v2" not in loki["ruler"]
    assert loki["ruler_storage"] == {"backend": "local", "local": {"directory": "/etc/loki/rules"}}
    # Loki 3.7 reads ruler_storage only with the thanos-io/objstore clients
    # on (else it falls back to ruler.storage, filled in from
    # common.storage): so they are on, and common.storage is gone
    assert loki["storage_config"]["use_thanos_objstore"] is True
    assert "storage" not in loki["common"]
    # the object store the schema and the compactor name is configured
    stores = set(loki["storage_config"]["object_store"])
    assert stores == {"filesystem"} and loki["storage_config"]["object_store"]["filesystem"]["dir"]
    assert {c["object_store"] for c in loki["schema_config"]["configs"]} == stores
    assert loki["compactor"]["delete_request_store"] in stores
    with open(os.path.join(ROOT, "docker-compose.grafana.yml")) as f:
        volumes = yaml.safe_load(f)["services"]["loki"]["volumes"]
    assert "./infrastructure/loki/rules:/etc/loki/rules:ro" in volumes
    rules = load_yaml(ROOT, "infrastructure", "loki", "rules", "fake", "oms-logs.yml")
    assert rules["groups"][0]["rules"]
    tempo = load_yaml(ROOT, "infrastructure", "tempo", "tempo.yml")
    protocols = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317") and protocols["http"]["endpoint"].endswith(":4318")
    assert tempo["metrics_generator"]["storage"]["remote_write"][0]["url"] == "http://prometheus:9090/api/v1/write"
    assert {"service-graphs", "span-metrics"} <= set(tempo["overrides"]["defaults"]["metrics_generator"]["processors"])


def test_rabbitmq_definitions_hold_the_design_topology():
    with open(os.path.join(ROOT, "infrastructure", "rabbitmq", "definitions.json")) as f:
        defs = json.load(f)
    exchanges = {e["name"]: e for e in defs["exchanges"]}
    assert exchanges["oms.events"]["type"] == "topic" and exchanges["oms.events"]["durable"]
    assert "oms.dlx" in exchanges
    queues = {q["name"]: q for q in defs["queues"]}
    assert queues["notification.events"]["arguments"]["x-dead-letter-exchange"] == "oms.dlx"
    bound = {(b["source"], b["destination"], b["routing_key"]) for b in defs["bindings"]}
    assert ("oms.events", "notification.events", "user.registered") in bound
    assert ("oms.dlx", "oms.dead-letters", "#") in bound
    # the user's hash is of the password .env.example gives the services
    password = read_env_file(os.path.join(ROOT, ".env.example"))["RABBITMQ_PASSWORD"]
    user = defs["users"][0]
    raw = base64.b64decode(user["password_hash"])
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert hashlib.sha256(raw[:4] + password.encode()).digest() == raw[4:]
    with open(os.path.join(ROOT, "infrastructure", "rabbitmq", "enabled_plugins")) as f:
        assert "rabbitmq_prometheus" in f.read()
