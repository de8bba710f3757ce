"""Durable storage behind one interface: embedded SQLite or PostgreSQL.

``open_store(url)`` is the only place a backend is chosen from its URL.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from gateway.store.base import (
    Acceptance,
    AcceptMessage,
    AppendAudit,
    Attempt,
    AuditRecord,
    CancelTimer,
    Case,
    Command,
    ConflictError,
    ConsoleAccount,
    ConsoleSession,
    ConsoleStore,
    Message,
    MessageQuery,
    MessageState,
    NewAuditEntry,
    NewMessage,
    RecordInbound,
    SaveCase,
    ScheduleTimer,
    Store,
    StoreError,
    Timer,
    TreeHead,
)

__all__ = [
    "AcceptMessage", "Acceptance", "AppendAudit", "Attempt", "AuditRecord", "CancelTimer", "Case",
    "Command", "ConflictError", "ConsoleAccount", "ConsoleSession", "ConsoleStore", "Message", "MessageQuery", "MessageState", "NewAuditEntry", "NewMessage", "RecordInbound", "SaveCase",
    "ScheduleTimer", "Store", "StoreError", "Timer", "TreeHead", "create_store",
]


def create_store(url: str, *, base_dir: Path | None = None) -> Store:
    """The store named by ``url``, not yet opened.

    ``sqlite:///relative/file.db`` (relative to ``base_dir``, default the working
    directory), ``sqlite:////absolute/file.db``, ``sqlite:///:memory:``, or
    ``postgresql://user@host:port/database[?schema=name]``.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from gateway.store.sqlite import SQLiteStore

        path = url.removeprefix("sqlite:///")
        if path != ":memory:" and not Path(path).is_absolute() and base_dir is not None:
            path = str(base_dir / path)
        return SQLiteStore(path)
    if scheme in ("postgresql", "postgres"):
        try:
            from gateway.store.postgres import PostgresStore
        except ImportError as exc:  # the optional extra is not installed
            raise StoreError(
                "a postgresql:// store needs the 'postgres' extra: pip install 'reentry-gateway[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise StoreError(f"unsupported store URL scheme {scheme!r}: use sqlite:/// or postgresql://")
