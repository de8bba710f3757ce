"""Durable storage behind one interface: embedded SQLite or PostgreSQL.

``create_store(url)`` is the only place a backend is chosen from its URL. ``base`` holds the
records, the commands and the port (the role protocols and ``Store``, which combines them);
``sql`` the SQL both backends share; ``sqlite`` and ``postgres`` what each does its own way.
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
    AuditStore,
    CancelTimer,
    Case,
    CaseStore,
    Command,
    ConflictError,
    ConsoleAccount,
    ConsoleSession,
    ConsoleStore,
    DeliveryStore,
    Evidence,
    Inbox,
    IndicatorCounts,
    IndicatorEvents,
    IndicatorReferral,
    IndicatorRelease,
    IndicatorReoffence,
    IndicatorStore,
    Lifecycle,
    Message,
    MessageQuery,
    MessageState,
    NewAuditEntry,
    NewMessage,
    StoredEvidence,
    Outbox,
    RecordInbound,
    RecordReferral,
    RecordReferralOutcome,
    DecideReferralOutcome,
    RecordRelease,
    RecordReoffence,
    SaveCase,
    ScheduleTimer,
    Store,
    StoreError,
    Timer,
    TreeHead,
    Transactions,
    WorkflowStore,
)

__all__ = [
    "AcceptMessage", "Acceptance", "AppendAudit", "Attempt", "AuditRecord", "AuditStore", "CancelTimer", "Case",
    "CaseStore", "Command", "ConflictError", "ConsoleAccount", "ConsoleSession", "ConsoleStore", "DeliveryStore",
    "DecideReferralOutcome", "Evidence", "Inbox", "IndicatorCounts", "IndicatorEvents", "IndicatorReferral",
    "IndicatorRelease", "IndicatorReoffence", "IndicatorStore",
    "Lifecycle", "Message", "MessageQuery", "MessageState", "NewAuditEntry", "NewMessage", "Outbox",
    "RecordInbound", "RecordReferral", "RecordReferralOutcome", "RecordRelease", "RecordReoffence", "SaveCase",
    "ScheduleTimer", "Store", "StoredEvidence", "StoreError", "Timer", "Transactions", "TreeHead", "WorkflowStore", "create_store",
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
