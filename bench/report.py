"""What a run reports besides its figures — the machine, the versions, the command — and how
it is written: a text table as it runs, JSON, and the Markdown of BENCHMARKS.md.

BENCHMARKS.md has two parts. Above ``ANALYSIS_MARKER`` everything is written by the run;
below it is the analysis (what bounds each figure, what was optimised), which a run keeps.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import Section

__all__ = ["ANALYSIS_MARKER", "busy_cores", "command_line", "machine", "markdown", "text", "versions", "write_markdown"]

ANALYSIS_MARKER = "<!-- Everything below this line is kept when the harness rewrites this file. -->"
_PACKAGES = ("aiohttp", "lxml", "zeep", "signxml", "cryptography", "pydantic", "psycopg", "structlog")


def busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores' worth of CPU the machine spent over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    try:
        total_a, idle_a = sample()
        time.sleep(seconds)
        total_b, idle_b = sample()
    except OSError:
        return None
    total = total_b - total_a
    return (os.cpu_count() or 1) * (total - (idle_b - idle_a)) / total if total else None


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "kernel": platform.release(), "load_average": os.getloadavg()}
    try:
        model = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        info["cpu"] = model.split(":", 1)[1].strip()
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        info["memory_gb"] = round(int(mem.split()[1]) / 1024 / 1024, 1)
        release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        info["os"] = release.get("PRETTY_NAME", "").strip('"')
    except (OSError, StopIteration):
        pass
    return info


def versions(nginx: str | None, postgres: str | None) -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                                    "postgresql": postgres, "nginx": nginx}
    for package in ("reentry-gateway", *_PACKAGES):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    found["commit"] = _commit()
    return found


def _commit() -> str | None:
    """The checkout's commit, marked ``+changes`` when the tree differs from it (read-only git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{' +changes' if dirty else ''}" if head else None


def _value(figure: dict[str, Any]) -> str:
    value = figure["value"]
    if value is None:
        return "n/a"
    unit = figure["unit"]
    if unit == "x":
        return f"{value:.2f}×"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f} {unit}"


def _verdict(figure: dict[str, Any]) -> str:
    if figure["met"] is None:
        return ""
    return "met" if figure["met"] else "NOT met"


def text(section: Section) -> str:
    """A section as the console shows it while the run goes on."""
    lines = [f"\n== {section.title} ({section.seconds:.0f} s)"]
    if section.error:
        lines.append(f"   FAILED: {section.error}")
    for figure in (f.as_dict() for f in section.figures):
        target = f"  [target {figure['target']}: {_verdict(figure)}]" if figure["target"] else ""
        note = f"  ({figure['note']})" if figure["note"] else ""
        lines.append(f"   {figure['name']:<72} {_value(figure):>14}{target}{note}")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    m, v = result["machine"], result["versions"]
    started = dt.datetime.fromisoformat(result["started_at"])
    lines = [
        "# Benchmarks",
        "",
        f"Latest full run: {started:%Y-%m-%d %H:%M} UTC, {result['seconds'] / 60:.1f} minutes, "
        f"profile `{result['profile']}`.",
        "",
        "```sh",
        result["command"],
        "```",
        "",
        f"- Machine: {m.get('cpu', '?')}, {m['cores']} cores, {m.get('memory_gb', '?')} GB, {m.get('os', '?')}, "
        f"Linux {m['kernel']}.",
        f"- Load before the run: {result['busy_before']:.2f} cores busy (1 s sample), load average "
        f"{', '.join(f'{x:.2f}' for x in m['load_average'])}. {result['caveat']}",
        "- Versions: " + ", ".join(f"{name} {value}" for name, value in v.items() if value) + ".",
        "- Everything runs on 127.0.0.1: the load generator (this process), the agency simulators (one "
        "process), nginx (one worker) and each gateway (`gateway serve`, one process).",
        "",
    ]
    summary = [f for s in result["sections"] for f in s["figures"] if f["target"]]
    if summary:
        lines += ["## Targets", "", "| figure | value | target | |", "|---|---:|---|---|"]
        lines += [f"| {f['name']} | {_value(f)} | {f['target']} | {_verdict(f)} |" for f in summary]
        lines.append("")
    for number, section in enumerate(result["sections"], start=1):
        lines += [f"## {number}. {section['title']}", ""]
        if section["error"]:
            lines += [f"**The scenario failed:** {section['error']}", ""]
        if section["figures"]:
            lines += ["| figure | value | target | | note |", "|---|---:|---|---|---|"]
            lines += [f"| {f['name']} | {_value(f)} | {f['target'] or ''} | {_verdict(f)} | {f['note'] or ''} |"
                      for f in section["figures"]]
            lines.append("")
        lines += [f"- {note}" for note in section["notes"]]
        lines.append("")
    return "\n".join(lines)


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    """Rewrite the generated part of ``path``, keeping what follows ``ANALYSIS_MARKER``."""
    kept = ""
    if path.exists():
        previous = path.read_text(encoding="utf-8")
        if ANALYSIS_MARKER in previous:
            kept = previous.split(ANALYSIS_MARKER, 1)[1]
    path.write_text(markdown(result).rstrip() + "\n\n" + ANALYSIS_MARKER + (kept or "\n"), encoding="utf-8")


def command_line(program: list[str], arguments: list[str]) -> str:
    """The command that ran: ``program`` (its interpreter relative to the working folder) and ``arguments``."""
    python = Path(sys.executable)
    if python.is_relative_to(Path.cwd()):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python) if word == sys.executable else word for word in program] + arguments)
