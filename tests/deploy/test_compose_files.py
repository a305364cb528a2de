"""The two Compose stacks, checked every way possible without a Docker
engine: schema-valid after interpolation, every build context and mounted
file present, every service of services/ deployed and routed, images
pinned, limits and health checks in place, every variable documented."""
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


def example_env(**overrides):
    env = read_env_file(os.path.join(ROOT, ".env.example"))
    env.update({"GRAFANA_ADMIN_PASSWORD": "test-grafana-password"}, **overrides)
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
    listed = read_env_file(os.path.join(ROOT, ".env.example"))
    missing = sorted(variables_used(path) - set(listed))
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
        assert f"{port}:{port}" in svc["ports"]
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
        if image.startswith("oms/"):
            continue  # built here
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
        assert svc["deploy"]["resources"]["limits"]["memory"], name
        assert svc["restart"] in ("unless-stopped", "no"), name


def test_data_stores_are_health_checked_with_named_volumes(webapp):
    services = webapp["services"]
    for name in ("postgres", "redis", "rabbitmq", "traefik"):
        assert services[name]["healthcheck"]["test"], name
    for name, volume in (("postgres", "postgres-data"), ("redis", "redis-data"), ("rabbitmq", "rabbitmq-data")):
        assert any(v.startswith(volume + ":") for v in services[name]["volumes"])
        assert volume in webapp["volumes"]


def test_agents_of_both_vms(webapp, grafana):
    for name in ("node-exporter", "cadvisor", "promtail", "postgres-exporter", "redis-exporter"):
        assert name in webapp["services"], name
    for name in ("prometheus", "alertmanager", "loki", "tempo", "grafana", "node-exporter", "cadvisor"):
        assert name in grafana["services"], name
    # prometheus keeps exemplars and accepts Tempo's remote writes
    command = " ".join(grafana["services"]["prometheus"]["command"])
    assert "--enable-feature=exemplar-storage" in command and "--web.enable-remote-write-receiver" in command


def host_ports(doc):
    ports = []
    for svc in doc["services"].values():
        for mapping in svc.get("ports", []):
            ports.append(int(str(mapping).split(":")[0]) if ":" in str(mapping) else int(mapping))
    return ports


def test_both_stacks_fit_on_one_host(webapp, grafana):
    webapp_ports, grafana_ports = host_ports(webapp), host_ports(grafana)
    assert len(set(webapp_ports)) == len(webapp_ports)
    assert len(set(grafana_ports)) == len(grafana_ports)
    assert not set(webapp_ports) & set(grafana_ports)
    # DESIGN's ports
    assert {80, 8080, 8002, 8004, 5432, 6379, 5672, 15672, 15692, 9100, 8081, 9187, 9121} <= set(webapp_ports)
    assert {3000, 9090, 9093, 3100, 3200, 4317, 4318} <= set(grafana_ports)


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
