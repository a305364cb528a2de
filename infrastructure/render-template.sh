#!/bin/sh
# Renders a config template: replaces ${NAME} and ${NAME:-default} with the
# environment variable NAME (or the default when NAME is unset or empty) and
# writes the result to stdout. Used where the program itself cannot read
# environment variables (Prometheus, Alertmanager): by their containers at
# start-up, by scripts/deploy.sh to check the result, and by the tests.
#
#   render-template.sh TEMPLATE > OUTPUT
#
# Only names that start with a letter or '_' are replaced, so Prometheus's
# own ${1} (a regex group in relabelling) is left alone. A ${NAME} without
# default whose variable is unset is an error. POSIX sh and awk: it runs in
# the busybox-based Prometheus and Alertmanager images.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 TEMPLATE" >&2; exit 2; }
exec awk '
{
    line = $0
    out = ""
    while (match(line, /\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}/)) {
        expr = substr(line, RSTART + 2, RLENGTH - 3)
        name = expr
        fallback = ""
        has_default = 0
        split_at = index(expr, ":-")
        if (split_at > 0) {
            name = substr(expr, 1, split_at - 1)
            fallback = substr(expr, split_at + 2)
            has_default = 1
        }
        value = ENVIRON[name]
        if (value == "") {
            if (!has_default) {
                printf "%s:%d: %s is not set\n", FILENAME, NR, name > "/dev/stderr"
                failed = 1
            }
            value = fallback
        }
        out = out substr(line, 1, RSTART - 1) value
        line = substr(line, RSTART + RLENGTH)
    }
    print out line
}
END { exit failed }
' "$1"
