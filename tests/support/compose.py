"""Reading Compose files the way `docker compose` does, without Docker:
.env parsing and variable interpolation (Compose Specification,
"Interpolation"), so that the result can be validated against the
Compose JSON schema."""
import re

import yaml

# $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error},
# ${NAME:+alt}, ${NAME+alt}, $NAME
_TOKEN = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class InterpolationError(Exception):
    pass


def read_env_file(path):
    """KEY=value lines; # comments and blank lines skipped. A value in single
    quotes is taken literally, quotes removed, as Compose does (the project's
    .env.example quotes the one value with a $ in it); other values are
    taken as they are (it has no ${...} in them)."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if sep:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == "'":
                    value = value[1:-1]
                env[key.strip()] = value
    return env


def interpolate(text, env):
    def replace(match):
        escaped, name, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        if bare:
            return env.get(bare, "")
        value = env.get(name)
        unset_or_empty = value is None or value == ""
        if operator is None:
            return value or ""
        if operator == ":-":
            return argument if unset_or_empty else value
        if operator == "-":
            return argument if value is None else value
        if operator == ":?":
            if unset_or_empty:
                raise InterpolationError(f"{name}: {argument}")
            return value
        if operator == "?":
            if value is None:
                raise InterpolationError(f"{name}: {argument}")
            return value
        if operator == ":+":
            return "" if unset_or_empty else argument
        if operator == "+":
            return "" if value is None else argument
        raise AssertionError(operator)

    return _TOKEN.sub(replace, text)


def _interpolate_tree(node, env):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        # Compose interpolates values, not keys.
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load(path, env):
    """The Compose file at `path` as data, YAML anchors and merge keys
    resolved, every value interpolated with `env`."""
    with open(path) as f:
        doc = yaml.safe_load(f)
    return _interpolate_tree(doc, env)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)


def variables_used(path):
    """Every NAME that a value of the Compose file refers to with ${NAME...}
    or $NAME (comments do not count)."""
    with open(path) as f:
        doc = yaml.safe_load(f)
    return {m.group(2) or m.group(5) for text in _strings(doc) for m in _TOKEN.finditer(text) if not m.group(1)}
