#!/usr/bin/env python3
"""Fails when the modules of services/common include each other in a circle.

A module is a .h/.c pair (or a lone header) named by its stem: auth.h and
auth.c are the module `auth`. `x.c` or `x.h` including "y.h" makes `x`
depend on `y`. A cycle means no module of it can be read, tested or reused
without all the others, so `make lint` refuses one and names it:

    scripts/check-includes.py [directory]      (default services/common)
    scripts/check-includes.py --order          also print the layers, bottom first
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.MULTILINE)


def read_graph(directory):
    graph = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext not in (".c", ".h"):
            continue
        graph.setdefault(stem, set())
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            for target in INCLUDE.findall(f.read()):
                graph[stem].add(os.path.basename(target))
    for stem in graph:  # only modules of this directory count
        graph[stem] = {t for t in graph[stem] if t in graph and t != stem}
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def one_loop(graph, component):
    """A concrete path round the cycle, for the message: a -> b -> ... -> a."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    node = start
    while True:
        nxt = sorted(t for t in graph[node] if t in members)
        back = start if start in nxt else None
        if back is not None and len(path) > 1:
            return path + [start]
        unseen = [t for t in nxt if t not in seen]
        if not unseen:
            return path + [nxt[0]] if nxt else path
        node = unseen[0]
        path.append(node)
        seen.add(node)


def layers(graph):
    """Modules by height: layer 0 includes no other module."""
    height = {}

    def h(node):
        if node not in height:
            height[node] = 0
            height[node] = 1 + max((h(t) for t in graph[node]), default=-1)
        return height[node]

    for node in graph:
        h(node)
    by_layer = {}
    for node, level in height.items():
        by_layer.setdefault(level, []).append(node)
    return [sorted(by_layer[level]) for level in sorted(by_layer)]


def main(argv):
    order = "--order" in argv
    args = [a for a in argv if a != "--order"]
    directory = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "services", "common")
    graph = read_graph(directory)
    found = cycles(graph)
    for component in found:
        print("include cycle in %s: %s" % (directory, " -> ".join(one_loop(graph, component))), file=sys.stderr)
    if found:
        return 1
    if order:
        for level, modules in enumerate(layers(graph)):
            print("%2d  %s" % (level, " ".join(modules)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
