"""Store backends as fixtures (a pytest plugin): every test that takes ``store`` runs on SQLite and on PostgreSQL.

PostgreSQL is the server at ``GATEWAY_TEST_POSTGRES_URL`` (default: the local
one); each test works in a schema of its own, dropped afterwards. When the
server cannot be reached the PostgreSQL cases are skipped, unless
``GATEWAY_TEST_REQUIRE_POSTGRES=1`` (CI), where they fail.

Tests pass ``now`` explicitly: the store never reads a clock.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

from gateway.store import Store, create_store

POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("GATEWAY_TEST_REQUIRE_POSTGRES") == "1"


def _schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


class Backend:
    """Hands out fresh, empty store locations of one kind and removes them all at the end."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self._directory = directory
        self._urls: list[str] = []

    def fresh_url(self) -> str:
        if self.name == "sqlite":
            url = f"sqlite:///{self._directory / f'store-{len(self._urls)}.db'}"
        else:
            # Unique per test, and recognisable if a crashed run leaves one behind.
            url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema=gw_test_{uuid.uuid4().hex}"
        self._urls.append(url)
        return url

    def unreachable_url(self) -> str:
        """A location no store can open: a file that is not a database, or a closed port."""
        if self.name == "sqlite":
            path = self._directory / "not-a-database.db"
            path.write_bytes(b"this is not a database\n" * 100)
            return f"sqlite:///{path}"
        return "postgresql://postgres@127.0.0.1:1/test?schema=gw_test_unreachable&connect_timeout=2"

    def execute(self, url: str, statement: str) -> list[tuple]:
        """Run one SQL statement at ``url`` behind the store's back (to stage what a test needs)."""
        if self.name == "sqlite":
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            try:
                with conn:
                    return conn.execute(statement).fetchall()
            finally:
                conn.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(_schema_of(url))))
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def discard(self, url: str) -> None:
        if self.name == "sqlite":
            path = url.removeprefix("sqlite:///")
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
        else:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(_schema_of(url))))
        self._urls.remove(url)

    def discard_all(self) -> None:
        for url in list(self._urls):
            self.discard(url)


@pytest.fixture(scope="session")
def postgres_reachable() -> None:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc}); set GATEWAY_TEST_POSTGRES_URL"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} — GATEWAY_TEST_REQUIRE_POSTGRES=1 requires it", pytrace=False)
        pytest.skip(reason)


def _backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if name == "postgres":
        request.getfixturevalue("postgres_reachable")
    backend = Backend(name, tmp_path)
    yield backend
    backend.discard_all()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, request, tmp_path)


@pytest.fixture
def postgres_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend("postgres", request, tmp_path)


@pytest.fixture
def store_url(backend: Backend) -> str:
    return backend.fresh_url()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = create_store(store_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def open_store() -> AsyncIterator[Callable[[str], Awaitable[Store]]]:
    """Open a store at a URL — a second instance on ``store``'s database, say;
    closed after the test."""
    opened: list[Store] = []

    async def open_at(url: str) -> Store:
        instance = create_store(url)
        await instance.open()
        opened.append(instance)
        return instance

    yield open_at
    for instance in reversed(opened):
        await instance.close()
