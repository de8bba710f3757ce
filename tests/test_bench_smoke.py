"""The benchmark harness keeps working: its tiniest configuration runs every scenario.

Benchmarks print figures; this test asserts nothing about how big they are — only that each
scenario ran to the end and measured every figure it reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {"cpu", "overhead", "durable", "scatter", "backlog", "burst", "naive", "signatures", "console",
             "indicators"}


def test_every_benchmark_scenario_produces_its_figures(tmp_path):
    figures = tmp_path / "tiny.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--profile", "tiny", "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=360,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    sections = {section["key"]: section for section in json.loads(figures.read_text(encoding="utf-8"))["sections"]}
    assert set(sections) == SCENARIOS
    for key, section in sections.items():
        assert section["error"] is None, f"{key}: {section['error']}"
        assert section["figures"], f"{key} reported no figure"
        missing = [figure["name"] for figure in section["figures"] if figure["value"] is None]
        assert not missing, f"{key} did not measure: {missing}"
