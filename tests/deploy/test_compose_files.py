"""The two Compose stacks, checked every way possible without a Docker
engine: schema-valid after interpolation, every build context and mounted
file present, every service of services/ deployed and routed, images
pinned, limits and health checks in place, every variable documented and
every service setting of .env.example delivered to the services that read
it, sized to fit the containers, nothing published on every address that
should not be."""
import glob
import ipaddress
import json
import os
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from compose import InterpolationError, load, read_env_file, variables_used
from oms_test import ROOT

WEBAPP = os.path.join(ROOT, "docker-compose.yml")
GRAFANA = os.path.join(ROOT, "docker-compose.grafana.yml")
HERE = os.path.dirname(__file__)
# The Compose Specification's schema; a copy of ../shared/schemas/compose-spec.json
# kept in the repository so that the test runs wherever the repository is.
SCHEMA_PATH = os.path.join(HERE, "compose-spec.json")


def shared_folder():
    """The shared/ folder next to this checkout, wherever the checkout is
    (a developer's folder, a CI clone with a copy of shared/ beside it, a
    symlinked path), or None when there really is none."""
    tops = [ROOT, os.path.realpath(ROOT), os.path.realpath(os.path.join(HERE, "..", ".."))]
    git = subprocess.run(["git", "-C", HERE, "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if git.returncode == 0 and git.stdout.strip():
        tops.append(git.stdout.strip())
    for top in tops:
        # `..` taken from the path as named, then as the filesystem resolves it
        for candidate in (os.path.normpath(os.path.join(top, "..", "shared")), os.path.join(top, "..", "shared")):
            if os.path.isdir(candidate):
                return candidate
    return None

# A service directory and the path prefix Traefik routes to it (DESIGN.md).
PREFIXES = {"order": "/api/orders", "inventory": "/api/inventory", "payment": "/api/payments",
            "user": "/api/users", "notification": "/api/notifications"}


BIND_ADDRESS = "10.0.0.5"  # a private address, as on the webapp VM of two


def env_example():
    """.env.example's settings, as Compose reads them."""
    return read_env_file(os.path.join(ROOT, ".env.example"))


def example_env(**overrides):
    env = env_example()
    env.update({"GRAFANA_ADMIN_PASSWORD": "test-grafana-password", "BIND_ADDRESS": BIND_ADDRESS}, **overrides)
    return env


@pytest.fixture(scope="module")
def schema():
    with open(SCHEMA_PATH) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def webapp():
    return load(WEBAPP, example_env())


@pytest.fixture(scope="module")
def grafana():
    return load(GRAFANA, example_env())


def service_dirs():
    return sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                  if d not in ("common", "frontend") and os.path.isfile(os.path.join(ROOT, "services", d, "main.c")))


def test_the_schema_copy_is_the_shared_one():
    shared = shared_folder()
    if shared is None:
        pytest.skip("no shared/ folder next to this checkout")
    # a shared folder without the schema is an error, not a reason to skip
    shared_schema = os.path.join(shared, "schemas", "compose-spec.json")
    assert os.path.isfile(shared_schema), f"{shared} has no schemas/compose-spec.json"
    with open(shared_schema) as a, open(SCHEMA_PATH) as b:
        assert json.load(a) == json.load(b)


@pytest.mark.parametrize("path", [WEBAPP, GRAFANA])
def test_compose_files_match_the_compose_schema(schema, path):
    doc = load(path, example_env())
    jsonschema.Draft7Validator(schema).validate(doc)
    # nothing left uninterpolated
    assert "${" not in json.dumps(doc)


def test_the_schema_check_catches_mistakes(schema, webapp):
    broken = json.loads(json.dumps(webapp))
    broken["services"]["inventory"]["depends_on"]["postgres"]["condition"] = "service_started_eventually"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)
    broken = json.loads(json.dumps(webapp))
    broken["services"]["redis"]["healthcheck"]["interval"] = ["5s"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_the_grafana_stack_needs_an_admin_password():
    with pytest.raises(InterpolationError, match="GRAFANA_ADMIN_PASSWORD"):
        load(GRAFANA, example_env(GRAFANA_ADMIN_PASSWORD=""))


@pytest.mark.parametrize("path", [WEBAPP, GRAFANA])
def test_every_variable_is_in_env_example(path):
    # set there, or shown commented out where the default is the better choice
    missing = sorted(variables_used(path) - names_in_env_example())
    assert not missing, f"{os.path.basename(path)} uses variables .env.example does not list: {missing}"


def test_every_service_is_built_routed_and_checked(webapp):
    services = webapp["services"]
    for name in service_dirs():
        assert name in services, f"services/{name} is not in docker-compose.yml"
        svc = services[name]
        build = svc["build"]
        assert os.path.isdir(os.path.join(ROOT, build["context"]))
        assert os.path.isfile(os.path.join(ROOT, build["context"], build["dockerfile"]))
        assert build["args"]["SERVICE"] == name
        labels = svc["labels"]
        assert "traefik.enable=true" in labels
        assert f"traefik.http.routers.{name}.rule=PathPrefix(`{PREFIXES[name]}`)" in labels
        assert any(l.startswith(f"traefik.http.services.{name}.loadBalancer.healthCheck.path=/health/ready")
                   for l in labels)
        assert f"traefik.http.routers.{name}.middlewares=oms-retry@file,oms-circuit-breaker@file" in labels
        port = svc["environment"]["PORT"]
        assert f"{BIND_ADDRESS}:{port}:{port}" in svc["ports"]
        # built here and tagged with the project's version, never pulled
        assert svc["pull_policy"] == "build"
        assert svc["image"] == f"oms/{name}:{project_version()}"
        assert f"traefik.http.services.{name}.loadBalancer.server.port={port}" in labels
        assert "?gssencmode=disable" in svc["environment"]["DATABASE_URL"]
        for dependency in ("postgres", "redis", "rabbitmq"):
            assert svc["depends_on"][dependency]["condition"] == "service_healthy"
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "--providers.file.filename=/etc/traefik/dynamic.yml" in services["traefik"]["command"]
    assert any(v.endswith(":/etc/traefik/dynamic.yml:ro") for v in services["traefik"]["volumes"])
    with open(os.path.join(ROOT, "infrastructure", "traefik", "dynamic.yml")) as f:
        middlewares = yaml.safe_load(f)["http"]["middlewares"]
    assert middlewares["oms-retry"]["retry"]["attempts"] >= 1
    assert "ResponseCodeRatio" in middlewares["oms-circuit-breaker"]["circuitBreaker"]["expression"]


def test_traefik_exports_metrics_logs_and_traces(webapp):
    command = webapp["services"]["traefik"]["command"]
    for flag in ("--metrics.prometheus=true", "--metrics.prometheus.addEntryPointsLabels=true",
                 "--metrics.prometheus.addRoutersLabels=true", "--metrics.prometheus.addServicesLabels=true",
                 "--accessLog.format=json", "--providers.docker=true", "--ping=true"):
        assert flag in command
    buckets = next(c for c in command if c.startswith("--metrics.prometheus.buckets="))
    bounds = [float(b) for b in buckets.split("=", 1)[1].split(",")]
    assert bounds == sorted(bounds) and bounds[0] <= 0.005 and len(bounds) >= 10  # fine enough for SLOs
    endpoint = next(c for c in command if c.startswith("--tracing.otlp.http.endpoint="))
    assert endpoint.endswith(":4318/v1/traces")
    assert re.match(r"^v3\.\d+\.\d+$", webapp["services"]["traefik"]["image"].split(":")[1])


def project_version():
    with open(os.path.join(ROOT, "VERSION")) as f:
        return f.read().strip()


def test_the_images_built_here_carry_the_project_version():
    assert env_example()["OMS_VERSION"] == project_version()
    assert re.match(r"^\d+\.\d+\.\d+$", project_version())


def test_traefik_serves_its_dashboard_only_behind_a_password(webapp):
    traefik = webapp["services"]["traefik"]
    assert not any(c.startswith("--api.insecure") for c in traefik["command"])
    labels = dict(label.split("=", 1) for label in traefik["labels"])
    assert labels["traefik.http.routers.dashboard.service"] == "api@internal"
    assert labels["traefik.http.routers.dashboard.entryPoints"] == "traefik"
    middleware = labels["traefik.http.routers.dashboard.middlewares"]
    users = labels[f"traefik.http.middlewares.{middleware}.basicAuth.users"]
    # htpasswd lines with a hash Traefik reads (apr1 or bcrypt), never a password
    assert users and all(re.match(r"^[^:\s]+:\$(apr1|2[aby])\$", u) for u in users.split(","))
    # and it is required: no .env value, no stack
    with pytest.raises(InterpolationError, match="TRAEFIK_DASHBOARD_USERS"):
        load(WEBAPP, example_env(TRAEFIK_DASHBOARD_USERS=""))


def test_the_lab_dashboard_login_is_the_documented_one():
    line = env_example()["TRAEFIK_DASHBOARD_USERS"]
    user, hashed = line.split(":", 1)
    salt = hashed.split("$")[2]
    out = subprocess.run(["openssl", "passwd", "-apr1", "-salt", salt, "traefik-lab-password"], capture_output=True,
                         text=True, check=True)
    assert user == "admin" and out.stdout.strip() == hashed


def test_services_trust_only_traefiks_fixed_address(webapp):
    traefik_ip = webapp["services"]["traefik"]["networks"]["oms"]["ipv4_address"]
    ipam = webapp["networks"]["oms"]["ipam"]["config"][0]
    subnet, dynamic = ipaddress.ip_network(ipam["subnet"]), ipaddress.ip_network(ipam["ip_range"])
    # inside the network, outside the range Docker hands to other containers
    assert ipaddress.ip_address(traefik_ip) in subnet and ipaddress.ip_address(traefik_ip) not in dynamic
    for name in service_dirs():
        assert webapp["services"][name]["environment"]["TRUSTED_PROXIES"] == traefik_ip, name


def bind_sources(doc):
    for name, svc in doc["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("./"):
                yield name, source


@pytest.mark.parametrize("path", [WEBAPP, GRAFANA])
def test_every_mounted_file_exists(path):
    doc = load(path, example_env())
    sources = list(bind_sources(doc))
    assert sources
    for service, source in sources:
        assert os.path.exists(os.path.join(ROOT, source)), f"{service} mounts missing {source}"


@pytest.mark.parametrize("path", [WEBAPP, GRAFANA])
def test_images_are_pinned_and_everything_is_limited(path):
    doc = load(path, example_env())
    for name, svc in doc["services"].items():
        image = svc["image"]
        repository, _, tag = image.rpartition(":")
        # a version number, never a moving tag such as latest or bookworm
        assert repository and tag and tag != "latest" and re.match(r"^v?\d+\.\d+", tag), f"{name}: {image} is not pinned"
        assert svc["deploy"]["resources"]["limits"]["memory"], name
        assert svc["restart"] in ("unless-stopped", "no"), name


def test_the_dockerfile_base_images_are_pinned():
    with open(os.path.join(ROOT, "services", "Dockerfile")) as f:
        text = f.read()
    default = re.search(r"^ARG DEBIAN_VERSION=(\S+)$", text, re.M).group(1)
    # a dated Debian snapshot tag (bookworm-YYYYMMDD), not the moving "bookworm"
    assert re.match(r"^bookworm-\d{8}$", default), default
    for image in re.findall(r"^FROM (\S+)", text, re.M):
        assert image.startswith("debian:${DEBIAN_VERSION}"), image


def test_data_stores_are_health_checked_with_named_volumes(webapp):
    services = webapp["services"]
    for name in ("postgres", "redis", "rabbitmq", "traefik"):
        assert services[name]["healthcheck"]["test"], name
    for name, volume in (("postgres", "postgres-data"), ("redis", "redis-data"), ("rabbitmq", "rabbitmq-data")):
        assert any(v.startswith(volume + ":") for v in services[name]["volumes"])
        assert volume in webapp["volumes"]


def test_agents_of_both_vms(webapp, grafana):
    for name in ("node-exporter", "cadvisor", "alloy", "postgres-exporter", "redis-exporter"):
        assert name in webapp["services"], name
    for name in ("prometheus", "alertmanager", "loki", "tempo", "grafana", "node-exporter", "cadvisor"):
        assert name in grafana["services"], name
    # prometheus keeps exemplars and accepts Tempo's remote writes
    command = " ".join(grafana["services"]["prometheus"]["command"])
    assert "--enable-feature=exemplar-storage" in command and "--web.enable-remote-write-receiver" in command


def published(doc, one_host=False):
    """(service, host address or None, host port) of every port the stack
    takes on its host: the published ones ("[ip:]host:container") and those
    of host-network containers (their --web.listen-address). one_host: as
    on one host, without the services of profile host-agents."""
    for name, svc in doc["services"].items():
        if one_host and "host-agents" in svc.get("profiles", []):
            continue
        for mapping in svc.get("ports", []):
            parts = str(mapping).split(":")
            address = parts[0] if len(parts) == 3 else None
            yield name, address, int(parts[-2] if len(parts) > 1 else parts[0])
        if svc.get("network_mode") == "host":
            listen = next(c.split("=", 1)[1] for c in svc["command"] if c.startswith("--web.listen-address="))
            address, _, port = listen.rpartition(":")
            yield name, address or None, int(port)


def test_both_stacks_fit_on_one_host(webapp, grafana):
    webapp_ports = [port for _, _, port in published(webapp, one_host=True)]
    grafana_ports = [port for _, _, port in published(grafana, one_host=True)]
    assert len(set(webapp_ports)) == len(webapp_ports)
    assert len(set(grafana_ports)) == len(grafana_ports)
    assert not set(webapp_ports) & set(grafana_ports)
    # DESIGN's ports; the webapp VM's own host agents on two VMs
    assert {80, 8080, 8002, 8004, 5432, 6379, 5672, 15672, 15692, 9187, 9121, 12345} <= set(webapp_ports)
    assert {9100, 8081} <= {port for _, _, port in published(webapp)}
    assert {3000, 9090, 9093, 3100, 3200, 4317, 4318, 9100} <= set(grafana_ports)


# What users reach from anywhere: the API through Traefik, Grafana's UI
# (it has its own login). Everything else binds BIND_ADDRESS.
PUBLIC = {("traefik", 80), ("grafana", 3000)}


@pytest.mark.parametrize("path", [WEBAPP, GRAFANA])
def test_nothing_but_the_public_ports_listens_on_every_address(path):
    doc = load(path, example_env(GRAFANA_BIND_ADDRESS="0.0.0.0"))
    ports = list(published(doc))
    assert ports
    for name, address, port in ports:
        if (name, port) in PUBLIC:
            continue
        # no address (Docker's default) means 0.0.0.0 and [::]
        assert address == BIND_ADDRESS, f"{name} publishes {port} on {address or 'every address'}"


def test_the_default_bind_address_is_not_every_address():
    for path in (WEBAPP, GRAFANA):
        with open(path) as f:
            defaults = set(re.findall(r"\$\{BIND_ADDRESS:-([^}]*)\}", f.read()))
        assert defaults == {env_example()["BIND_ADDRESS"]}
    address = ipaddress.ip_address(env_example()["BIND_ADDRESS"])
    assert address.is_private and not address.is_unspecified


def test_the_dockerfile_builds_any_service_as_a_non_root_user():
    with open(os.path.join(ROOT, "services", "Dockerfile")) as f:
        text = f.read()
    assert re.search(r"^ARG SERVICE$", text, re.M)
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and stages[1].endswith("-slim")
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert re.search(r"^HEALTHCHECK .*/health/live", text, re.M | re.S)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
    # the build stage installs what install-deps.sh's build profile has
    with open(os.path.join(ROOT, "scripts", "install-deps.sh")) as f:
        build_profile = re.search(r'\[build\]="([^"]*)"', f.read()).group(1).split()
    for package in build_profile:
        if package.endswith("-dev") and package != "libcmocka-dev":
            assert package in text, f"the Dockerfile does not install {package}"
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        ignored = f.read().split()
    assert {".git", "build", ".run", ".test-run"} <= set(ignored)


def dockerfile_stage(text, index):
    return re.split(r"^FROM ", text, flags=re.M)[index + 1]


@pytest.mark.parametrize("service", service_dirs())
def test_the_dockerfile_build_stage_compiles_and_the_runtime_stage_has_its_libraries(tmp_path, service):
    """The build stage's steps, run here on the same Debian: copy what its
    COPY lines copy (minus .dockerignore's **/tests), run its make command;
    then every library the binary links directly must come from a package
    the runtime stage installs (or libc6, in every Debian image)."""
    with open(os.path.join(ROOT, "services", "Dockerfile")) as f:
        text = f.read().replace("${SERVICE}", service)
    build = dockerfile_stage(text, 0)
    context = tmp_path / "context"
    context.mkdir()
    for line in re.findall(r"^COPY (.+)$", build, re.M):
        *sources, target = line.split()
        for item in sources:
            src = os.path.join(ROOT, item)
            dst = context / target / os.path.basename(item) if target.endswith("/") else context / target
            dst.parent.mkdir(parents=True, exist_ok=True)
            if os.path.isdir(src):
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("tests", "__pycache__"))
            else:
                shutil.copy(src, dst)
    make = re.search(r"RUN (make .*?) \\", build, re.S).group(1).replace("${REVISION}", "test")
    out = subprocess.run(make, shell=True, cwd=context, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    binary = context / "build" / "release" / "bin" / service
    assert binary.exists()

    runtime = dockerfile_stage(text, 1)
    packages = set(re.search(r"apt-get install -y --no-install-recommends ([^&]*)&&", runtime, re.S)
                   .group(1).replace("\\", " ").split()) | {"libc6"}
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", subprocess.run(["readelf", "-d", str(binary)], capture_output=True,
                                                               text=True).stdout)
    assert needed
    for library in needed:
        path = subprocess.run(["sh", "-c", f"ldconfig -p | awk '$1 == \"{library}\" {{print $NF; exit}}'"],
                              capture_output=True, text=True).stdout.strip()
        # dpkg knows a file by the path its package installed it at; with
        # the merged /usr that may be /lib/... or /usr/lib/..., the link or the file.
        real = os.path.realpath(path)
        candidates = [path, real, "/usr" + path, real.replace("/usr/lib/", "/lib/", 1)]
        owners = [subprocess.run(["dpkg", "-S", c], capture_output=True, text=True).stdout for c in candidates]
        package = next((o.split(":")[0] for o in owners if o), "")
        assert package in packages, f"{library} comes from {package}, which the runtime stage does not install"


# --- service settings: .env.example -> the containers that read them ---------

CONFIG_READ = re.compile(r'config_(?:string|long|double|choice|string_checked)\(\s*(?:&?[\w.>\-]+\s*,\s*)?'
                         r'"([A-Z][A-Z0-9_]*)"')

# Settings the Compose file sets itself, whatever .env says, and why.
FIXED_BY_COMPOSE = {
    "LISTEN_ADDRESS": "a container listens on its own interfaces (0.0.0.0)",
    "PORT": "each service's own port, which Traefik's labels and the image's health check use",
    "DATABASE_URL": "per service: its role, the host postgres and its *_DB_PASSWORD",
    "REDIS_URL": "the host redis and REDIS_PASSWORD",
    "AMQP_URL": "the host rabbitmq, the user oms and RABBITMQ_PASSWORD",
    "TRUSTED_PROXIES": "Traefik's fixed address, TRAEFIK_IP",
    "INVENTORY_URL": "the peer's Compose name",
    "PAYMENT_URL": "the peer's Compose name",
    "USER_URL": "the peer's Compose name",
    "SMTP_URL": "Mailpit, by its Compose name",
    "OTEL_SERVICE_NAME": "each service's own name",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "Tempo on GRAFANA_HOST",
}
# Read by every service, but not through config_*(): by the tracing code to
# come (the standard OpenTelemetry names) or by a library before main().
READ_OUTSIDE_CONFIG = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "GNUTLS_NO_IMPLICIT_INIT"}


def settings_read_by(service):
    names = set()
    for path in glob.glob(os.path.join(ROOT, "services", "common", "*.c")) + \
            glob.glob(os.path.join(ROOT, "services", service, "*.c")):
        with open(path) as f:
            names |= set(CONFIG_READ.findall(f.read()))
    return names | READ_OUTSIDE_CONFIG


def names_in_env_example():
    """Every NAME .env.example sets or shows commented out (# NAME=...)."""
    with open(os.path.join(ROOT, ".env.example")) as f:
        return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", f.read(), re.M))


def test_the_source_scan_finds_the_settings_it_should():
    # a check on the check: settings read in each way the code reads them
    assert {"THREADS", "PG_POOL_SIZE", "LOG_LEVEL", "JWT_SECRET"} <= settings_read_by("inventory")
    assert {"ARGON2_MEMORY_KIB", "HASH_THREADS", "LOGIN_MAX_FAILURES_PER_IP"} <= settings_read_by("user")
    assert "ARGON2_MEMORY_KIB" not in settings_read_by("inventory")
    assert {"ORDER_SAGA_LEASE_S", "INVENTORY_URL"} <= settings_read_by("order")


def test_every_setting_of_env_example_reaches_the_services_that_read_it():
    """Each variable gets a value of its own; every service that reads it
    must see exactly that value, unless the Compose file fixes it (then the
    service has the fixed value and the sentinel goes nowhere)."""
    named = names_in_env_example()
    sentinels = {name: f"sentinel-{name.lower()}" for name in named}
    doc = load(WEBAPP, example_env(**sentinels))
    checked = set()
    for service in service_dirs():
        environment = doc["services"][service]["environment"]
        for name in sorted(named & settings_read_by(service)):
            if name in FIXED_BY_COMPOSE:
                assert environment.get(name) not in (None, "", sentinels[name]), (service, name)
            else:
                assert environment.get(name) == sentinels[name], \
                    f"{name} from .env does not reach {service} (it has {environment.get(name)!r})"
            checked.add(name)
        # nothing reaches a service through a name it does not read
        unread = set(environment) - settings_read_by(service) - set(FIXED_BY_COMPOSE)
        assert not unread, (service, unread)
    # the check covers the settings the issue names
    assert {"THREADS", "HASH_THREADS", "PG_POOL_SIZE", "LOGIN_MAX_FAILURES_PER_EMAIL", "ARGON2_MEMORY_KIB",
            "CACHE_TTL_SECONDS", "USER_CACHE_TTL_SECONDS", "LOG_LEVEL", "OTEL_TRACES_SAMPLER"} <= checked
    assert set(FIXED_BY_COMPOSE) <= checked


# --- sized for the containers ---------------------------------------------------

def mebibytes(size):
    number, unit = re.match(r"^(\d+)([KMG])i?B?$", str(size), re.I).groups()
    return int(number) * {"K": 1 / 1024, "M": 1, "G": 1024}[unit.upper()]


def limits(svc):
    return svc["deploy"]["resources"]["limits"]


def test_threads_and_hash_memory_fit_each_service_container(webapp):
    for name in service_dirs():
        svc = webapp["services"][name]
        environment = svc["environment"]
        # one worker thread per CPU the container may use
        assert int(environment["THREADS"]) <= float(limits(svc)["cpus"]), name
    user = webapp["services"]["user"]
    environment = user["environment"]
    assert int(environment["HASH_THREADS"]) <= float(limits(user)["cpus"])
    # every hash thread holds ARGON2_MEMORY_KIB while it hashes, on top of
    # the service (~11 MB resident idle; 64 MiB allowed for it and its pools)
    hashing = int(environment["HASH_THREADS"]) * int(environment["ARGON2_MEMORY_KIB"]) / 1024
    assert 64 + hashing <= mebibytes(limits(user)["memory"]), (hashing, limits(user))


def database_connections(env, services):
    """PostgreSQL connections the stack opens at most: every worker thread's
    pool and a readiness probe per thread (services/common/pg.c), the
    exporter's, the migrate job's."""
    total = 0
    for name in services:
        environment = env["services"][name]["environment"]
        total += int(environment["THREADS"]) * (int(environment["PG_POOL_SIZE"]) + 1)
    return total + 2 + 1


# PostgreSQL keeps superuser_reserved_connections (3) for superusers; room
# for a learner's psql sessions and the exporter's own bursts on top.
RESERVED = 3
HEADROOM = 10


def max_connections(doc):
    command = doc["services"]["postgres"]["command"]
    return int(next(c.split("=", 1)[1] for c in command if c.startswith("max_connections=")))


def test_postgres_max_connections_covers_every_pool(webapp):
    needed = database_connections(webapp, service_dirs())
    assert needed + RESERVED + HEADROOM <= max_connections(webapp), needed


def test_the_budget_check_catches_a_pool_that_does_not_fit():
    doc = load(WEBAPP, example_env(PG_POOL_SIZE="16"))
    assert database_connections(doc, service_dirs()) + RESERVED + HEADROOM > max_connections(doc)


def test_a_service_opens_as_many_connections_as_the_budget_counts():
    """The budget's per-service term, measured: a service at THREADS=2 and
    PG_POOL_SIZE=3 holds 2 x 3 connections once ready (and at most one
    readiness probe per thread more)."""
    from oms_test import query, running, wait_until

    def connections(role):
        return query("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", role)[0][0]

    roles = {"inventory": "inventory", "user": "users", "order": "orders", "payment": "payments",
             "notification": "notifications"}
    for name in service_dirs():
        before = connections(roles[name])
        with running(name, THREADS="2", PG_POOL_SIZE="3"):
            seen = wait_until(lambda: connections(roles[name]) - before >= 6 or None, 20,
                              what=f"{name}'s pools to connect") and connections(roles[name]) - before
            assert 6 <= seen <= 2 * (3 + 1), (name, seen)
        wait_until(lambda: connections(roles[name]) <= before, 20, what=f"{name}'s connections to close")


# --- agents, images and data stores as their upstreams run them ----------------

@pytest.mark.parametrize("path", [WEBAPP, GRAFANA])
def test_node_exporter_runs_as_its_readme_says(path):
    svc = load(path, example_env())["services"]["node-exporter"]
    assert svc["network_mode"] == "host" and svc["pid"] == "host"
    assert svc["volumes"] == ["/:/host:ro,rslave"]
    assert "--path.rootfs=/host" in svc["command"]
    # the default mount-point exclusions are kept
    assert not any(c.startswith("--collector.filesystem.mount-points") for c in svc["command"])
    assert "ports" not in svc and "networks" not in svc


def test_the_firewall_rule_for_the_grafana_vms_node_exporter_names_its_bridge(grafana):
    """Prometheus reaches the host-network Node Exporter through the Grafana
    network's bridge: the interface DEPLOYMENT.md's ufw rule allows."""
    bridge = grafana["networks"]["observability"]["driver_opts"]["com.docker.network.bridge.name"]
    assert len(bridge) <= 15  # a Linux interface name
    with open(os.path.join(ROOT, "docs", "DEPLOYMENT.md")) as f:
        assert f"sudo ufw allow in on {bridge} to any port 9100 proto tcp" in f.read()
    assert "observability" in grafana["services"]["prometheus"]["networks"]


def test_the_webapp_host_agents_run_only_on_a_vm_of_their_own(webapp):
    for name in ("node-exporter", "cadvisor"):
        assert webapp["services"][name]["profiles"] == ["host-agents"]
    # off by default (one host): the Grafana stack's report the machine
    assert env_example()["COMPOSE_PROFILES"] == ""


def test_templates_are_rendered_by_sh_in_the_grafana_stack(grafana):
    for name in ("prometheus", "alertmanager"):
        command = " ".join(grafana["services"][name]["command"])
        assert re.match(r"^sh /etc/oms/render-template\.sh ", command), command


def test_redis_persistence_fits_its_memory_limit(webapp):
    redis = webapp["services"]["redis"]
    command = redis["command"]
    maxmemory = mebibytes(command[command.index("--maxmemory") + 1])
    assert command[command.index("--appendonly") + 1] == "yes"
    # rewriting the append-only file forks: the child may copy every page
    # (up to maxmemory again) while Redis itself needs some room
    assert 2 * maxmemory + 48 <= mebibytes(limits(redis)["memory"]), (maxmemory, limits(redis))


def test_rabbitmq_memory_watermark_is_absolute_and_below_its_limit(webapp):
    with open(os.path.join(ROOT, "infrastructure", "rabbitmq", "rabbitmq.conf")) as f:
        conf = dict(line.split(" = ", 1) for line in f.read().splitlines() if " = " in line and line[0] != "#")
    assert "vm_memory_high_watermark.relative" not in conf
    watermark = mebibytes(conf["vm_memory_high_watermark.absolute"])
    limit = mebibytes(limits(webapp["services"]["rabbitmq"])["memory"])
    # room above the mark for the Erlang VM's garbage collection
    assert watermark <= 0.7 * limit, (watermark, limit)


def test_postgres_data_volume_is_where_postgres_18_keeps_it(webapp):
    postgres = webapp["services"]["postgres"]
    assert re.match(r"^postgres:18\.", postgres["image"])
    # 18's image: PGDATA /var/lib/postgresql/18/docker, VOLUME /var/lib/postgresql
    assert "postgres-data:/var/lib/postgresql" in postgres["volumes"]
