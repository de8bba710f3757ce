"""Imports point inwards (docs/architecture.md), checked with import-linter's contracts in
pyproject.toml, and the runtime loads none of the tools."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import GatewayProcess, free_port, write_config

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_every_import_points_inwards():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"Contracts: \d+ kept, 0 broken", result.stdout)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The packages and the contracts, copied so that a test can add a forbidden import."""
    root = tmp_path_factory.mktemp("layers")
    for package in ("gateway", "adapters"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "_data"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


# Each cycle or wrong-way import the layout once had, as the one line that would bring it back.
# (A function-local import counts like any other.)
_REGRESSIONS = {
    "a toolkit importing the HTTP entry point": (
        "gateway/soap/server.py", "def _late():\n    from gateway.entrypoints.http import app\n", "toolkits"),
    "a route module importing the application that imports it": (
        "gateway/entrypoints/http/api.py", "def _late():\n    from gateway.entrypoints.http import app\n", "no cycle"),
    "the disclosure policy importing the configuration that validates with it": (
        "gateway/security/disclosure.py", "from gateway.config import GatewayConfig\n", "no cycle"),
    "security importing the SOAP toolkit that is built on it": (
        "gateway/security/xmldsig.py", "from gateway.soap.envelope import serialise\n", "no cycle"),
    "the SOAP toolkit importing an agency's codec": (
        "gateway/soap/server.py", "from adapters.penal import codec\n", "toolkits"),
    "one agency's adapter importing another's codec": (
        "adapters/clinic/client.py", "from adapters.health import codec\n", "stands alone"),
    "the workflows importing a use case above them": (
        "gateway/workflows/egress.py", "from gateway.services import relay\n", "entry points -> bootstrap"),
    "the runtime loading a simulator": (
        "gateway/bootstrap.py", "from adapters.health import simulator\n", "never loads a simulator"),
}


@pytest.mark.parametrize("case", sorted(_REGRESSIONS))
def test_the_contracts_refuse_each_import_the_layout_once_had(tree_copy, case):
    relative, line, contract = _REGRESSIONS[case]
    target = tree_copy / relative
    original = target.read_text(encoding="utf-8")
    target.write_text(original + "\n\n" + line, encoding="utf-8")
    try:
        result = _lint(tree_copy)
    finally:
        target.write_text(original, encoding="utf-8")
    assert result.returncode != 0, f"{case}: the contracts did not notice"
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout[-3000:]


async def test_gateway_serve_loads_no_simulator_demo_or_benchmark(tmp_path, http):
    config = write_config(tmp_path / "config", receiver_url="http://127.0.0.1:9")
    log = tmp_path / "serve.log"
    # -X importtime writes every module the process imports to stderr.
    process = GatewayProcess(config, free_port(), log, env={"PYTHONPROFILEIMPORTTIME": "1"})
    process.start()
    try:
        await process.ready(http)
    finally:
        process.stop()
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)$", log.read_text(), flags=re.M))
    assert "gateway.bootstrap" in imported and "gateway.entrypoints.http.app" in imported
    tools = sorted(name for name in imported if name.startswith(("bench", "gateway.entrypoints.tools"))
                   or name in ("adapters.population", "adapters.simulation") or name.endswith(".simulator"))
    assert not tools, f"gateway serve imported tooling: {tools}"
