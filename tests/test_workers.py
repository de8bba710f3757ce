"""``gateway serve --workers N``: processes sharing one port on PostgreSQL, refused on SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from support import RecordingReceiver, free_port, person_payload, wait_until, write_config

WORKERS = 2
CONNECTIONS = 24


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _serving_pid(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The process holding the server side of the connection from ``client_port`` (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


async def _served_by(port: int, pids: list[int]) -> int | None:
    """Which worker answers a request on a new connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        assert b" 200 " in status, status
        return _serving_pid(port, writer.get_extra_info("sockname")[1], pids)
    finally:
        writer.close()


def test_more_than_one_worker_is_refused_on_sqlite(tmp_path):
    config_dir = write_config(tmp_path / "config", receiver_url="http://127.0.0.1:9", store_url="sqlite:///gw.db")
    run = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(config_dir), "--workers", "2"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--workers 2 needs the PostgreSQL store" in run.stderr and "one writer" in run.stderr
    assert not (tmp_path / "config" / "gw.db").exists()  # refused before anything started


async def test_two_workers_on_postgresql_share_the_port_and_sigterm_stops_both(tmp_path, postgres_backend):
    receiver = await RecordingReceiver().start()
    config_dir = write_config(tmp_path / "config", receiver_url=receiver.url, store_url=postgres_backend.fresh_url())
    port = free_port()
    log_path = tmp_path / "supervisor.log"
    with log_path.open("w") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config_dir), "--port", str(port),
             "--workers", str(WORKERS)], stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        await wait_until(lambda: "workers listening" in log_path.read_text() or supervisor.poll() is not None,
                         timeout=120)
        assert supervisor.poll() is None, log_path.read_text()
        workers = _children(supervisor.pid)
        assert len(workers) == WORKERS

        served = [await _served_by(port, workers) for _ in range(CONNECTIONS)]
        assert set(served) == set(workers), served  # the kernel spread the connections over both

        # Both accept and deliver: messages relayed on fresh connections all arrive.
        ids = set()
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for number in range(20):
                async with http.post(f"http://127.0.0.1:{port}/api/v1/relay/health/bulk",
                                     json=person_payload(number), headers={
                                         "X-Member-Id": "penal", "X-Purpose": "continuity_of_care"}) as response:
                    assert response.status == 202, await response.text()
                    ids.add(response.headers["Location"].rsplit("/", 1)[1])
        await wait_until(lambda: len(receiver.unique_ids()) == 20, timeout=60)

        started = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=120) == 0, log_path.read_text()
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists(), f"worker {pid} still runs"
        text = log_path.read_text()
        assert f"workers stopped (exit status {', '.join(['0'] * WORKERS)})" in text, text
        assert text.count("gateway stopped") == WORKERS, text
        assert time.monotonic() - started < 60
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=30)
        await receiver.close()
