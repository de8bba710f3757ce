"""The processes a benchmark starts — ``gateway serve``, the agency systems, nginx — and
stops again, whatever happens.

Each child is told by the kernel to end when the harness ends (``PR_SET_PDEATHSIG``), so not
even a harness killed with SIGKILL leaves one behind; ``Children.stop_all`` stops them in
order on a normal exit, on Ctrl-C and on failure.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["Agencies", "Children", "GatewayProcess", "Nginx", "PlainJson", "cpu_seconds", "peak_rss_mb"]

_PR_SET_PDEATHSIG = 1
_STOP_SECONDS = 20.0


def _die_with_parent() -> None:
    """Run in the child before exec: SIGTERM it when the harness goes away."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: Children.stop_all still stops it on every exit Python sees


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size (VmHWM), in MB; None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int, thread: int | None = None) -> float | None:
    """CPU time the process (or one of its threads) has used so far, user and system, from
    ``/proc/PID/stat`` (all threads) or ``/proc/PID/task/TID/stat``; None when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: the fields after it start past its ')'.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child:
    """One child process with its output in ``log_path``."""

    stop_seconds = _STOP_SECONDS

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.log_path = name, argv, log_path
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.pid) if self.running() else None

    def cpu_seconds(self, *, main_thread: bool = False) -> float | None:
        """The child's CPU time so far; with ``main_thread``, its first thread's alone (the event loop's)."""
        if not self.running():
            return None
        return cpu_seconds(self.pid, self.pid if main_thread else None)

    def stop(self, stop_signal: int = signal.SIGTERM) -> float:
        """Stop the child (SIGKILL after ``stop_seconds``, saying so); how many seconds it took."""
        if not self.running():
            return 0.0
        started = time.monotonic()
        self.process.send_signal(stop_signal)
        try:
            self.process.wait(timeout=self.stop_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=_STOP_SECONDS)
            print(f"bench: {self.name} did not stop within {self.stop_seconds:g} s and was killed; "
                  f"the end of its log:\n{self.tail()}", file=sys.stderr, flush=True)
        return time.monotonic() - started

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Children:
    """Every child a run started, stopped in reverse order of starting."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def add(self, child: Child) -> Child:
        self._children.append(child)
        return child

    def stop_all(self) -> None:
        while self._children:
            child = self._children.pop()
            try:
                child.stop()
            except Exception:  # keep stopping the others
                if child.running():
                    child.process.kill()


async def _wait_ready(child: Child, url: str, timeout: float) -> Any:
    """Poll ``url`` until it answers 200 (bounded); the JSON it answered."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if not child.running():
                raise RuntimeError(f"{child.name} exited during start-up:\n{child.tail()}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return await response.json()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name} was not ready within {timeout:g} s:\n{child.tail()}")


class GatewayProcess(Child):
    """``gateway serve`` with a configuration folder and ``GATEWAY__…`` overrides."""

    # SIGTERM drains deliveries in flight and signs an audit tree head for every entry not yet
    # covered: after 100,000 messages that takes about 15 s.
    stop_seconds = 60.0

    def __init__(self, name: str, config_dir: Path, port: int, log_path: Path, env: dict[str, str]) -> None:
        super().__init__(name, [sys.executable, "-m", "gateway", "serve", "--config", str(config_dir),
                                "--port", str(port)], log_path, env)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 60.0) -> None:
        await _wait_ready(self, self.url + "/readyz", timeout)

    async def gauge(self, session: aiohttp.ClientSession, name: str, **labels: str) -> float | None:
        """One sample of the gateway's own metrics, by name and labels; None when it has none."""
        async with session.get(self.url + "/metrics") as response:
            text = await response.text()
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    async def delivered(self, session: aiohttp.ClientSession, destination: str) -> int:
        """Delivery attempts to ``destination`` that succeeded, from the gateway's own metrics."""
        async with session.get(self.url + "/metrics") as response:
            text = await response.text()
        prefix = f'gateway_delivery_attempts_total{{destination="{destination}",outcome="delivered"}}'
        for line in text.splitlines():
            if line.startswith(prefix):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0


class Agencies(Child):
    """The agency systems (``bench.agencies``) and a client of their control server."""

    def __init__(self, spec: dict[str, Any], root: Path) -> None:
        spec_path = root / "agencies.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        super().__init__("agencies", [sys.executable, "-m", "bench.agencies", str(spec_path)], root / "agencies.log")
        self.spec = spec
        self._control = f"http://127.0.0.1:{spec['ports']['control']}"
        self._session: aiohttp.ClientSession | None = None

    def url(self, system: str) -> str:
        return f"http://127.0.0.1:{self.spec['ports'][system]}"

    async def ready(self, timeout: float) -> None:
        await _wait_ready(self, self._control + "/ready", timeout)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str, **query: Any) -> Any:
        async with self._session.get(self._control + path, params={k: str(v) for k, v in query.items()}) as r:
            r.raise_for_status()
            return await r.json()

    async def post(self, path: str, payload: Any) -> Any:
        async with self._session.post(self._control + path, json=payload) as r:
            r.raise_for_status()
            return await r.json()

    async def arrivals(self, system: str) -> dict[str, float]:
        """Message id -> when ``system`` first answered it with a 2xx."""
        answer = await self.get(f"/arrivals/{system}")
        return dict(zip(answer["ids"], answer["at"]))

    async def count(self, system: str) -> int:
        return (await self.get("/counts"))[system]

    async def behave(self, system: str, **behaviour: Any) -> None:
        await self.post("/behaviour", {"system": system, **behaviour})


class PlainJson(Child):
    """The CPU figure's baseline (``bench.plain``): a plain aiohttp JSON handler on ``port``."""

    def __init__(self, port: int, log_path: Path, loop: str) -> None:
        super().__init__(f"plain aiohttp ({loop})", [sys.executable, "-m", "bench.plain", str(port), "--loop", loop],
                         log_path)
        self.port = port

    async def ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.tail()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen within {timeout:g} s")


class Nginx(Child):
    """nginx as a plain reverse proxy: each listening port forwards to one upstream port."""

    def __init__(self, binary: str, root: Path, routes: dict[int, int]) -> None:
        directory = root / "nginx"
        directory.mkdir(exist_ok=True)
        servers = "\n".join(
            f"""
    upstream u{upstream} {{ server 127.0.0.1:{upstream}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{listen} backlog=1024;
        location / {{
            proxy_pass http://u{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}"""
            for listen, upstream in routes.items()
        )
        # One worker: the gateway is one process too, and the machine has two cores.
        (directory / "nginx.conf").write_text(
            f"""daemon off;
master_process on;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
{servers}
}}
""",
            encoding="utf-8",
        )
        super().__init__("nginx", [binary, "-p", str(directory), "-c", str(directory / "nginx.conf"),
                                   "-e", str(directory / "error.log")], root / "nginx.log")
        self.routes = routes

    @staticmethod
    def binary() -> str | None:
        return shutil.which("nginx") or next(
            (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None)

    @staticmethod
    def version(binary: str) -> str:
        answer = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
        return (answer.stderr or answer.stdout).strip().rpartition("/")[2]

    async def ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        port = next(iter(self.routes))
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"nginx exited during start-up:\n{self.tail()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def stop(self, stop_signal: int = signal.SIGQUIT) -> float:
        # SIGQUIT: a graceful shutdown of master and worker.
        return super().stop(stop_signal)
