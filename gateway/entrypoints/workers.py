"""``gateway serve --workers N``: N gateway processes sharing one listening port, under a supervisor.

Each worker is a whole gateway (``gateway serve`` in a process of its own: its event loop, its
delivery dispatchers, its workflow timers, its pool of store connections) listening with
``SO_REUSEPORT``, so the kernel spreads new connections over them. They coordinate through
PostgreSQL exactly as separate instances do (docs/deployment.md): claims with ``SKIP LOCKED``
and leases, ``LISTEN``/``NOTIFY``, the audit log's own ordering. SQLite has one writer per
database, so N > 1 on it is refused before anything starts.

The supervisor starts the first worker alone and waits until it listens: it migrates the schema
and provisions any missing key, which the others then find. It then starts the rest on the
port the first one bound, and waits for a signal. SIGTERM or SIGINT: each worker is sent
SIGTERM and stops as one instance does (stop listening, finish deliveries in flight, sign the
audit tree head, close the store); the supervisor exits when all have, 0 if every one stopped
cleanly. A worker that ends by itself stops the others and the supervisor exits 1, so a process
manager restarts the whole service. Workers are told by the kernel to stop if the supervisor
dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["WorkerError", "supervise"]

_PR_SET_PDEATHSIG = 1
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
_READY_SECONDS = 120.0
# A worker drains its deliveries (10 s grace) and signs its tree heads before it exits.
_STOP_SECONDS = 90.0


class WorkerError(RuntimeError):
    """A worker did not start."""


def _in_child() -> None:
    """Run in each worker before exec: unblock what the supervisor blocked, and die with it."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class _Worker:
    def __init__(self, number: int, command: Sequence[str], port: int) -> None:
        self.number = number
        read, write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [*command, "--port", str(port), "--reuse-port", "--ready-fd", str(write)],
                pass_fds=(write,), preexec_fn=_in_child, stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(write)
        self._ready = read

    def ready(self, timeout: float) -> int:
        """The port the worker listens on, once it does."""
        deadline = time.monotonic() + timeout
        answer = b""
        try:
            while not answer.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._ready], [], [], left)[0]:
                    raise WorkerError(f"worker {self.number} did not listen within {timeout:g} s")
                chunk = os.read(self._ready, 64)
                if not chunk:
                    raise WorkerError(f"worker {self.number} exited during start-up "
                                      f"(status {self.process.wait()})")
                answer += chunk
        finally:
            os.close(self._ready)
        return int(answer)


def supervise(command: Sequence[str], workers: int, port: int, *, log=print) -> int:
    """Run ``workers`` copies of ``command`` (``gateway serve`` without its port) on ``port``."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    started: list[_Worker] = []
    try:
        first = _Worker(1, command, port)
        started.append(first)
        bound = first.ready(_READY_SECONDS)
        for number in range(2, workers + 1):
            started.append(_Worker(number, command, bound))
        for worker in started[1:]:
            worker.ready(_READY_SECONDS)
        log(f"gateway: {workers} workers listening on port {bound} "
            f"(pids {', '.join(str(w.process.pid) for w in started)})")
        requested = _wait(started)
    except WorkerError as exc:
        log(f"gateway: {exc}; stopping the other workers")
        requested = False
    except BaseException:
        _stop(started)
        raise
    codes = _stop(started)
    clean = requested and all(code == 0 for code in codes)
    log(f"gateway: workers stopped (exit status {', '.join(map(str, codes))})")
    return 0 if clean else 1


def _wait(workers: list[_Worker]) -> bool:
    """Block until a stop signal (True) or until a worker ends by itself (False)."""
    while True:
        received = signal.sigtimedwait(_SIGNALS, 60.0)
        if received is None:
            continue
        if received.si_signo in (signal.SIGTERM, signal.SIGINT):
            return True
        if any(worker.process.poll() is not None for worker in workers):
            return False


def _stop(workers: list[_Worker]) -> list[int]:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_SECONDS
    codes = []
    for worker in workers:
        try:
            codes.append(worker.process.wait(timeout=max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            codes.append(worker.process.wait())
    return codes


def serve_command(config: Path | None, host: str | None) -> list[str]:
    """``gateway serve`` as a worker runs it: the same interpreter, configuration and host."""
    command = [sys.executable, "-m", "gateway", "serve"]
    if config is not None:
        command += ["--config", str(config)]
    if host is not None:
        command += ["--host", host]
    return command
