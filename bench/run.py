"""Running the scenarios: sizes from the command line, every child stopped at the end,
figures printed as they come and written to JSON and, for a full run, to BENCHMARKS.md."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import backlog, burst, console, cpu, durable, indicators, naive, overhead, scatter, signatures
from bench.harness import POSTGRES_URL, PROFILES, Bench, Profile, Section, timed
from bench.processes import Children, Nginx
from bench.report import busy_cores, command_line, machine, text, versions, write_markdown
from bench.stores import postgres_version

__all__ = ["SCENARIOS", "main"]

ROOT = Path(__file__).resolve().parent.parent
# In a checkout the figures go to bench/results/ and a full run rewrites BENCHMARKS.md beside
# the code; an installed package writes them under the working folder instead.
CHECKOUT = (ROOT / "pyproject.toml").is_file()
SCENARIOS: dict[str, Callable[[Bench], Awaitable[Section]]] = {
    "cpu": cpu.run,
    "overhead": overhead.run,
    "durable": durable.run,
    "scatter": scatter.run,
    "backlog": backlog.run,
    "burst": burst.run,
    "naive": naive.run,
    "signatures": signatures.run,
    "console": console.run,
    "indicators": indicators.run,
}
# More than this many cores busy before the start: the figures share the machine with something.
_BUSY_CAVEAT = 0.3


def _parser(program: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=program, description="Benchmark the gateway on loopback.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="profile", const="quick",
                      help="smaller volumes: every figure in under five minutes")
    size.add_argument("--profile", choices=sorted(PROFILES), help="tiny, quick or full (default)")
    parser.set_defaults(profile="full")
    parser.add_argument("--only", help=f"comma-separated scenarios (of: {', '.join(SCENARIOS)})")
    parser.add_argument("--json", type=Path, help="where to write the figures (default: bench/results/<profile>.json "
                                                  "in a checkout, ./bench-results/<profile>.json when installed)")
    parser.add_argument("--markdown", type=Path,
                        help="write the Markdown report here (default: BENCHMARKS.md, of the checkout or of the "
                             "working folder, after a full run of every scenario)")
    parser.add_argument("--gateway-source", type=Path,
                        help="run the gateway (and every process the bench starts) from this source tree, e.g. an "
                             "export of another revision, to compare it with this one on the same machine")
    parser.add_argument("--backlog-messages", type=int, help="messages the backlog scenario queues (default: the profile's)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, stores) for inspection")
    return parser


def main(argv: list[str] | None = None, program: list[str] | None = None) -> int:
    """Run the benchmark; ``program`` is how it was invoked (for the report's command line)."""
    program = program or [sys.executable, "-m", "bench"]
    arguments = sys.argv[1:] if argv is None else argv
    args = _parser(" ".join(program[1:] if program[0] == sys.executable else program)).parse_args(arguments)
    selected = list(SCENARIOS) if not args.only else [name.strip() for name in args.only.split(",")]
    unknown = [name for name in selected if name not in SCENARIOS]
    if unknown:
        print(f"bench: unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    profile = PROFILES[args.profile]
    if args.backlog_messages:
        profile = dataclasses.replace(profile, backlog_messages=args.backlog_messages)
    if args.gateway_source is not None:
        # Children import the gateway from there; the bench itself stays this one.
        os.environ["PYTHONPATH"] = str(args.gateway_source.resolve())
    started = time.monotonic()
    result = _header(profile, command_line(program, arguments))
    result["gateway_source"] = str(args.gateway_source) if args.gateway_source else None
    print(f"benchmark ({profile.name}): {', '.join(selected)}; {result['busy_before']:.2f} cores busy before the start",
          flush=True)
    try:
        sections = asyncio.run(_run(profile, selected, args.keep))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (see _run)
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    result["sections"] = [s.as_dict() for s in sections]
    result["seconds"] = round(time.monotonic() - started, 1)
    result["load_average_after"] = list(os.getloadavg())
    results = ROOT / "bench" / "results" if CHECKOUT else Path.cwd() / "bench-results"
    json_path = args.json or results / f"{profile.name}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    report = (ROOT if CHECKOUT else Path.cwd()) / "BENCHMARKS.md"
    markdown_path = args.markdown or (report if profile.name == "full" and not args.only else None)
    if markdown_path is not None:
        write_markdown(markdown_path, result)
    print(f"\nfigures: {json_path}" + (f"; report: {markdown_path}" if markdown_path else "")
          + f"; {result['seconds'] / 60:.1f} minutes")
    return 1 if any(s.error for s in sections) else 0


def _header(profile: Profile, command: str) -> dict[str, Any]:
    busy = busy_cores()
    caveat = ("Other processes were using the machine when the run started: the figures are lower and noisier than "
              "on an idle machine." if busy is not None and busy > _BUSY_CAVEAT else "The machine was otherwise idle "
              "when the run started.")
    binary = Nginx.binary()
    return {"profile": profile.name, "command": command, "started_at": dt.datetime.now(dt.UTC).isoformat(),
            "busy_before": busy or 0.0, "caveat": caveat, "machine": machine(),
            "versions": versions(Nginx.version(binary) if binary else None,
                                 asyncio.run(postgres_version(POSTGRES_URL)))}


async def _run(profile: Profile, selected: list[str], keep: bool) -> list[Section]:
    # SIGTERM stops the run the way Ctrl-C does: through every finally below.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    children = Children()
    sections: list[Section] = []
    folder = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    try:
        bench = Bench(profile, folder, children)
        try:
            await bench.start()
            for name in selected:
                sections.append(await _scenario(name, bench))
                print(text(sections[-1]), flush=True)
        finally:
            await bench.close()
    finally:
        children.stop_all()
        if keep:
            print(f"run folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return sections


async def _scenario(name: str, bench: Bench) -> Section:
    """One scenario's section; a scenario that fails says so in its section and the run goes on."""
    section = Section(name, name)
    with timed(section):
        try:
            measured = await SCENARIOS[name](bench)
        except Exception as exc:
            section.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        else:
            section.title, section.figures, section.notes = measured.title, measured.figures, measured.notes
    return section
