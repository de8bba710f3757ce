"""An installed gateway finds its contracts and default configuration without the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_schemas_and_config(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    (wheel,) = tmp_path.glob("reentry_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "gateway/_data/config/members.toml" in names
    assert "gateway/_data/config/gateway.toml" in names
    assert "gateway/_data/schemas/openapi/gateway.json" in names
    assert "gateway/resources.py" in names


def test_the_wheel_carries_the_consoles_templates_static_files_and_catalogues(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    (wheel,) = tmp_path.glob("reentry_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    console = ROOT / "gateway" / "entrypoints" / "http" / "console"
    shipped = {path.relative_to(ROOT).as_posix() for folder in ("templates", "static", "locale")
               for path in (console / folder).rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert {"gateway/entrypoints/http/console/templates/base.html",
            "gateway/entrypoints/http/console/static/vendor/htmx.min.js",
            "gateway/entrypoints/http/console/locale/kk/LC_MESSAGES/console.po"} <= shipped
    assert not shipped - names, f"left out of the wheel: {sorted(shipped - names)}"


def test_an_installed_gateway_resolves_its_folders_inside_the_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    (wheel,) = (tmp_path / "dist").glob("reentry_gateway-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    probe = (
        "from gateway.resources import resource_dir; from gateway.config import load_config;"
        "print(resource_dir('config')); print(len(load_config(resource_dir('config'), environ={}).members))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path[:0] = [{str(tmp_path / 'site')!r}]; {probe}"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    config_dir, members = result.stdout.split()
    assert config_dir == str(tmp_path / "site" / "gateway" / "_data" / "config")
    assert int(members) >= 7


def test_gateway_bench_runs_from_the_installed_package(tmp_path):
    """The wheel alone, outside the checkout: every process the benchmark starts (the agency
    systems, the plain baseline, ``gateway serve``) imports the installed copy."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    (wheel,) = (tmp_path / "dist").glob("reentry_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"bench/run.py", "bench/agencies.py", "bench/plain.py", "bench/cpu.py",
            "bench/_data/pretrial-report-request.xml"} <= names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run(
        [sys.executable, "-c", "import bench, gateway; print(bench.__file__); print(gateway.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=work, env=env,
    )
    assert probe.stdout.split() == [str(site / "bench" / "__init__.py"), str(site / "gateway" / "__init__.py")]
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "--profile", "tiny", "--only", "cpu,signatures"],
        capture_output=True, text=True, timeout=240, cwd=work, env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads((work / "bench-results" / "tiny.json").read_text(encoding="utf-8"))
    assert [section["key"] for section in figures["sections"]] == ["cpu", "signatures"]
    assert all(section["error"] is None and section["figures"] for section in figures["sections"])
