"""Grafana Alloy's config (infrastructure/alloy/config.alloy), checked
without an Alloy binary (Debian packages none): it parses as Alloy's syntax,
every component, argument and nested block is one Alloy v1.18 documents,
the required arguments are there, every reference names a component and an
export that exist, and the labels a log line leaves with are the ones the
dashboards and Loki rules select on (service, container, level, vm)."""
import os
import re

import pytest
import yaml

from oms_test import ROOT

CONFIG = os.path.join(ROOT, "infrastructure", "alloy", "config.alloy")

# What the configuration reference of Alloy v1.18.1 documents for each
# component used (docs/sources/reference/components/*/<kind>.md): its
# arguments (required ones marked), its blocks and their arguments, and what
# it exports. Only a subset of the optional arguments: those worth using in
# a lab; a name outside this list fails the test and is checked by hand.
COMPONENTS = {
    "discovery.docker": {
        "arguments": {"host": True, "refresh_interval": False, "port": False, "host_networking_host": False,
                      "match_first_network": False},
        "blocks": {"filter": {"name": True, "values": True}},
        "exports": {"targets"},
    },
    "discovery.relabel": {
        "arguments": {"targets": True},
        "blocks": {"rule": {"action": False, "modulus": False, "regex": False, "replacement": False,
                            "separator": False, "source_labels": False, "target_label": False}},
        "exports": {"output", "rules"},
    },
    "loki.source.docker": {
        "arguments": {"forward_to": True, "host": True, "labels": False, "targets": True, "refresh_interval": False,
                      "relabel_rules": False},
        "blocks": {},
        "exports": set(),
    },
    "loki.process": {
        "arguments": {"forward_to": True},
        "blocks": {"stage.json": {"expressions": False, "regex": False, "drop_malformed": False, "source": False},
                   "stage.labels": {"values": False, "source_type": False},
                   "stage.static_labels": {"values": False}},
        "exports": {"receiver"},
    },
    "loki.write": {
        "arguments": {"external_labels": False, "max_streams": False},
        "blocks": {"endpoint": {"url": True, "batch_size": False, "batch_wait": False, "min_backoff_period": False,
                                "max_backoff_period": False, "max_backoff_retries": False, "remote_timeout": False,
                                "retry_on_http_429": False, "tenant_id": False, "name": False}},
        "exports": {"receiver"},
    },
}
# Functions of Alloy's standard library the config may call (stdlib/*.md;
# the older env() still exists, deprecated in favour of sys.env()).
STDLIB = {"sys.env", "string.format", "coalesce"}


class ParseError(Exception):
    pass


TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+) | (?P<newline>\n) | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*") | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[{}\[\](),=+\-*/<>!&|:.%^])""", re.X | re.S)


def tokens(text):
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise ParseError(f"line {line}: unexpected {text[pos:pos + 10]!r}")
        pos = m.end()
        if m.lastgroup not in ("space", "comment"):
            out.append((m.lastgroup, m.group()))
    return out


def parse(text):
    """A body of Alloy's syntax into {"attributes": {name: [tokens]},
    "blocks": [(name, label or None, body)]}: block `name "label" { ... }`,
    attribute `name = expression` ending at a newline outside brackets."""
    body, _ = parse_body(tokens(text), 0, top=True)
    return body


def parse_body(toks, pos, top=False):
    body = {"attributes": {}, "blocks": []}
    while True:
        while pos < len(toks) and toks[pos][0] == "newline":
            pos += 1
        if pos == len(toks):
            if top:
                return body, pos
            raise ParseError("a block is not closed")
        kind, value = toks[pos]
        if value == "}" and not top:
            return body, pos + 1
        if kind != "name":
            raise ParseError(f"expected a name, found {value!r}")
        pos += 1
        label = None
        if toks[pos][0] == "string":
            label, pos = toks[pos][1][1:-1], pos + 1
        if toks[pos][1] == "{":
            inner, pos = parse_body(toks, pos + 1)
            body["blocks"].append((value, label, inner))
        elif toks[pos][1] == "=" and label is None:
            if value in body["attributes"]:
                raise ParseError(f"{value} set twice")
            expression, depth, pos = [], 0, pos + 1
            while pos < len(toks) and not (depth == 0 and toks[pos][0] == "newline"):
                if toks[pos][1] in "{[(":
                    depth += 1
                elif toks[pos][1] in "}])":
                    depth -= 1
                    if depth < 0:
                        break
                expression.append(toks[pos])
                pos += 1
            if not expression or depth != 0:
                raise ParseError(f"{value}: an incomplete expression")
            body["attributes"][value] = expression
        else:
            raise ParseError(f"{value}: neither a block nor an attribute")


def references(expression):
    """The dotted names an expression uses (not map keys, not strings)."""
    names = []
    for i, (kind, value) in enumerate(expression):
        following = expression[i + 1][1] if i + 1 < len(expression) else ""
        if kind == "name" and following != "=":
            names.append((value, following == "("))
    return names


def problems(text):
    """Everything in the config that Alloy v1.18 does not document."""
    found = []
    doc = parse(text)
    if doc["attributes"]:
        found.append(f"top-level attributes: {sorted(doc['attributes'])}")
    declared = {}
    for kind, label, body in doc["blocks"]:
        spec = COMPONENTS.get(kind)
        if spec is None:
            found.append(f"{kind}: not a component this config may use")
            continue
        if label is None:
            found.append(f"{kind}: a component needs a label")
        declared[(kind, label)] = body
        for name in body["attributes"]:
            if name not in spec["arguments"]:
                found.append(f"{kind}.{label}: no argument {name}")
        for name, required in spec["arguments"].items():
            if required and name not in body["attributes"]:
                found.append(f"{kind}.{label}: the required argument {name} is missing")
        for block, block_label, inner in body["blocks"]:
            arguments = spec["blocks"].get(block)
            if arguments is None or block_label is not None:
                found.append(f"{kind}.{label}: no block {block}")
                continue
            for name in inner["attributes"]:
                if name not in arguments:
                    found.append(f"{kind}.{label} {block}: no argument {name}")
            for name, required in arguments.items():
                if required and name not in inner["attributes"]:
                    found.append(f"{kind}.{label} {block}: the required argument {name} is missing")
    # every reference is a stdlib call or component.label.export of this file
    for (kind, label), body in declared.items():
        expressions = list(body["attributes"].values()) + \
            [e for _, _, inner in body["blocks"] for e in inner["attributes"].values()]
        for expression in expressions:
            for name, called in references(expression):
                if called:
                    if name not in STDLIB:
                        found.append(f"{kind}.{label}: unknown function {name}")
                    continue
                if name in ("true", "false", "null"):
                    continue
                parts = name.split(".")
                target = next(((k, parts[len(k.split("."))]) for k in COMPONENTS
                               if name.startswith(k + ".") and len(parts) == len(k.split(".")) + 2), None)
                if target is None or target not in declared or parts[-1] not in COMPONENTS[target[0]]["exports"]:
                    found.append(f"{kind}.{label}: {name} names nothing this config exports")
    return found


@pytest.fixture(scope="module")
def text():
    with open(CONFIG) as f:
        return f.read()


@pytest.fixture(scope="module")
def config(text):
    return {(kind, label): body for kind, label, body in parse(text)["blocks"]}


def strings(expression):
    return [value[1:-1] for kind, value in expression if kind == "string"]


def test_the_config_uses_only_what_alloy_documents(text):
    assert problems(text) == []


@pytest.mark.parametrize("broken, expected", [
    ('refresh_interval = "10s"', 'refresh_intervall = "10s"'),           # a misspelt argument
    ("= discovery.docker.containers.targets", "= discovery.docker.container.targets"),  # dangling
    ("loki.process.json.receiver", "loki.process.json.output"),          # an export it does not have
    ('sys.env("GRAFANA_HOST")', 'sys.getenv("GRAFANA_HOST")'),           # a function not in the stdlib
    ('stage.labels {', 'stage.label {'),                                 # a block it does not have
    ('    url                 = "http://"', '    uri                 = "http://"'),  # the required url
])
def test_the_check_catches_what_alloy_would_refuse(text, broken, expected):
    assert broken in text
    assert problems(text.replace(broken, expected, 1)), expected


@pytest.mark.parametrize("bad", ['loki.write "x" {', 'a { x : 1 }', 'a { x = 1\n x = 2 }', 'a { x = [1, 2 }',
                                 'a "l" = 1', 'a { x = "unclosed }'])
def test_the_parser_refuses_what_is_not_alloy_syntax(bad):
    with pytest.raises(ParseError):
        parse(bad)


def test_only_this_stacks_containers_are_read(config):
    docker = config[("discovery.docker", "containers")]
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        project = yaml.safe_load(f)["name"]
    (_, _, filters), = docker["blocks"]
    assert strings(filters["attributes"]["name"]) == ["label"]
    assert strings(filters["attributes"]["values"]) == [f"com.docker.compose.project={project}"]
    source = config[("loki.source.docker", "containers")]
    assert strings(source["attributes"]["host"]) == strings(docker["attributes"]["host"]) == \
        ["unix:///var/run/docker.sock"]


def relabel(rules, meta):
    """Prometheus-style relabelling (action replace, the only one used), as
    Alloy applies discovery.relabel's rules: regex anchored at both ends."""
    labels = dict(meta)
    for rule in rules:
        attributes = {name: strings(value) for name, value in rule.items()}
        assert set(attributes) <= {"source_labels", "regex", "target_label", "replacement"}, attributes
        value = ";".join(labels.get(name, "") for name in attributes.get("source_labels", []))
        regex = attributes.get("regex", ["(.*)"])[0]
        m = re.fullmatch(regex, value)
        if m:
            replacement = attributes.get("replacement", ["$1"])[0]
            labels[attributes["target_label"][0]] = re.sub(r"\$(\d+)", lambda g: m.group(int(g.group(1))) or "",
                                                           replacement)
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def test_a_containers_stream_is_labelled_service_container_and_vm(config):
    rules = [inner["attributes"] for block, _, inner in config[("discovery.relabel", "containers")]["blocks"]
             if block == "rule"]
    meta = {"__meta_docker_container_name": "/oms-webapp-order-1",
            "__meta_docker_container_label_com_docker_compose_service": "order",
            "__meta_docker_container_id": "f00"}
    assert relabel(rules, meta) == {"service": "order", "container": "oms-webapp-order-1", "vm": "webapp"}
    source = config[("loki.source.docker", "containers")]
    assert [v for _, v in source["attributes"]["relabel_rules"]] == ["discovery.relabel.containers.rules"]


def test_json_level_becomes_the_level_label_as_before(config):
    process = config[("loki.process", "json")]
    stages = {block: inner["attributes"] for block, _, inner in process["blocks"]}
    assert [block for block, _, _ in process["blocks"]] == ["stage.json", "stage.labels"]  # parse, then label
    assert [v for k, v in stages["stage.json"]["expressions"] if k == "string"] == ['"level"']
    expression = [v for _, v in stages["stage.labels"]["values"]]
    assert expression[:3] == ["{", "level", "="]
    # every stream passes through it on its way to Loki
    source = config[("loki.source.docker", "containers")]
    assert [v for _, v in source["attributes"]["forward_to"]] == ["[", "loki.process.json.receiver", "]"]
    assert [v for _, v in process["attributes"]["forward_to"]] == ["[", "loki.write.grafana_vm.receiver", "]"]


def test_logs_go_to_loki_on_the_grafana_vm(config):
    (_, _, endpoint), = config[("loki.write", "grafana_vm")]["blocks"]
    url = "".join(v.strip('"') if k == "string" else v for k, v in endpoint["attributes"]["url"])
    assert url == 'http://+sys.env(GRAFANA_HOST)+:3100/loki/api/v1/push'
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        alloy = yaml.safe_load(f)["services"]["alloy"]
    assert "GRAFANA_HOST" in alloy["environment"]
    assert "./infrastructure/alloy/config.alloy:/etc/alloy/config.alloy:ro" in alloy["volumes"]
    assert alloy["command"][:2] == ["run", "/etc/alloy/config.alloy"]
