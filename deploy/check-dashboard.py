#!/usr/bin/env python3
"""Checks that every metric a Grafana dashboard queries is one Warden exposes.

    deploy/check-dashboard.py <dashboard.json> <server-url | exposition-file>

Reads every PromQL expression of the dashboard (panel targets, rows'
nested panels, templating queries), takes the names starting with
`warden_`, and looks each up in the server's `GET <url>/metrics`
(Prometheus text format), or in a saved exposition file. A histogram's
series (`_bucket`, `_sum`, `_count`) count as their family, and a family
counts as exposed when a `# TYPE` line declares it even with no series yet
(a labelled counter before its first increment). A name used as a
histogram series must belong to a family declared `histogram` (or
`summary`, for `_sum` and `_count`): `histogram_quantile` over something
else draws nothing.

Exit status: 0 when every name is exposed; 1 when one is not (each is
listed), when the dashboard names no metric, or when the dashboard is not
a usable Grafana dashboard; 2 on usage errors or when /metrics cannot be
read. Standard library only: CI runs it with the system python3.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

PREFIX = "warden_"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SUMMARY_SUFFIXES = ("_sum", "_count")
# A metric name as PromQL writes it. Quoted strings are removed before
# matching, so a label value such as route="/warden_x" is not taken for one.
NAME = re.compile(r"(?<![A-Za-z0-9_:])(" + PREFIX + r"[A-Za-z0-9_:]*)")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# `name{labels} value [timestamp]` or `name value`.
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{.*\})?\s+\S+")


def walk_panels(panels: list) -> list:
    """Every panel, those folded inside rows included."""
    out = []
    for panel in panels or []:
        out.append(panel)
        out.extend(walk_panels(panel.get("panels", [])))
    return out


def expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every query of the dashboard."""
    found = []
    for panel in walk_panels(dashboard.get("panels", [])):
        title = panel.get("title") or f"panel {panel.get('id')}"
        for target in panel.get("targets", []) or []:
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                found.append((f"panel {title!r} ({target.get('refId', '?')})", expr))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):  # newer Grafana: {"query": "...", "refId": ...}
            query = query.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            found.append((f"variable ${variable.get('name')}", query))
    return found


def metric_names(expr: str) -> set[str]:
    return set(NAME.findall(QUOTED.sub('""', expr)))


def structural_problems(dashboard: dict) -> list[str]:
    """What would stop Grafana from importing the file or drawing a panel."""
    problems = []
    if not isinstance(dashboard.get("panels"), list) or not dashboard["panels"]:
        problems.append("no panels")
    if not isinstance(dashboard.get("schemaVersion"), int):
        problems.append("no integer schemaVersion")
    if not dashboard.get("title"):
        problems.append("no title")
    ids: dict[int, str] = {}
    for panel in walk_panels(dashboard.get("panels", [])):
        title = panel.get("title", "?")
        pid = panel.get("id")
        if not isinstance(pid, int):
            problems.append(f"panel {title!r} has no integer id")
        elif pid in ids:
            problems.append(f"panels {ids[pid]!r} and {title!r} share id {pid}")
        else:
            ids[pid] = title
        if "gridPos" not in panel:
            problems.append(f"panel {title!r} has no gridPos")
        if panel.get("type") != "row" and not panel.get("targets"):
            problems.append(f"panel {title!r} has no query")
        for target in panel.get("targets", []) or []:
            expr = target.get("expr", "")
            for open_, close in ("()", "[]", "{}"):
                if expr.count(open_) != expr.count(close):
                    problems.append(f"panel {title!r}: unbalanced {open_}{close} in {expr!r}")
    return problems


def parse_exposition(text: str) -> tuple[dict[str, str], set[str]]:
    """(family -> type from `# TYPE` lines, names of the samples)."""
    types: dict[str, str] = {}
    samples: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        match = SAMPLE.match(line)
        if match:
            samples.add(match.group(1))
    return types, samples


def why_missing(name: str, types: dict[str, str], samples: set[str]) -> str | None:
    """None when `name`, as a dashboard queries it, is exposed; else why not."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            family = name[: -len(suffix)]
            kind = types.get(family)
            allowed = HISTOGRAM_SUFFIXES if kind == "histogram" else SUMMARY_SUFFIXES
            if kind in ("histogram", "summary") and suffix in allowed:
                return None
            if kind is not None:
                return f"{family} is exposed as a {kind}, not a histogram"
            if family.startswith(PREFIX) and family + "_bucket" in samples:
                return None  # untyped, but its series are there
            if name in types or name in samples:
                # A metric whose own name ends so (`..._count` counter): fine
                # unless the dashboard meant a histogram, which it cannot say.
                return None
            return f"no family {family} (histogram) exposed"
    if name in types or name in samples:
        return None
    # OpenMetrics (the prometheus-client crate's output) declares a counter's
    # family without `_total` and an info metric's without `_info`.
    for suffix, kind in (("_total", "counter"), ("_info", "info")):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == kind:
            return None
    return "not exposed"


def family_of(name: str) -> str:
    """The family a queried name belongs to, for reporting."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_exposition(source: str) -> str:
    if source.startswith(("http://", "https://")):
        url = source.rstrip("/") + "/metrics"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as e:
            print(f"check-dashboard: cannot read {url}: {e}", file=sys.stderr)
            sys.exit(2)
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as e:
        print(f"check-dashboard: cannot read {source}: {e}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    dashboard_path, source = argv[1], argv[2]
    try:
        dashboard = json.loads(Path(dashboard_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"check-dashboard: {dashboard_path}: {e}", file=sys.stderr)
        return 1
    if isinstance(dashboard.get("dashboard"), dict):  # the API's {"dashboard": ...} wrapper
        dashboard = dashboard["dashboard"]

    problems = structural_problems(dashboard)
    used: dict[str, list[str]] = {}
    for where, expr in expressions(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    if not used:
        problems.append(f"no query names a {PREFIX}* metric")
    if problems:
        print(f"check-dashboard: {dashboard_path} is not usable:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1

    types, samples = parse_exposition(read_exposition(source))
    # family -> (reason, queried names, where first used)
    missing: dict[str, tuple[str, list[str], str]] = {}
    for name in sorted(used):
        reason = why_missing(name, types, samples)
        if reason is not None:
            family = family_of(name)
            _, names, where = missing.get(family, (reason, [], used[name][0]))
            missing[family] = (reason, names + [name], where)
    families = {family_of(n) for n in used}
    if missing:
        print(
            f"check-dashboard: {len(missing)} of the {len(families)} metric families "
            f"{dashboard_path} queries are missing from {source}:",
            file=sys.stderr,
        )
        for family, (reason, names, where) in missing.items():
            queried = "" if names == [family] else f"; queried as {', '.join(names)}"
            print(f"  {family}: {reason} (used by {where}{queried})", file=sys.stderr)
        return 1
    print(f"check-dashboard: all {len(families)} metric families {dashboard_path} queries "
          f"are exposed by {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
