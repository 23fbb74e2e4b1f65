"""The ``events`` and ``kafka_offsets`` tables in SQLite or PostgreSQL.

``SqlStore`` implements ``connector.consumer.EventStore`` (the rebuild rule's three operations)
inside one open database transaction, and ``commit(offsets)`` writes the consumed offsets in
that same transaction before committing it: rows and offsets become visible together or not at
all, which is what makes the materializer exactly once. Upserts are buffered and written with
``executemany`` (a pipeline in psycopg), flushed before any delete so the order of the topic is
kept. The two dialects differ only in placeholders, column types and value adaptation.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from connector.core.records import ChangeEvent
from connector.errors import ConfigError, RetriableError
from connector.materialize.rows import COLUMNS, EventRow, to_row

log = logging.getLogger(__name__)

_KINDS = {
    "generation": "bigint",
    "kafka_partition": "int",
    "kafka_offset": "bigint",
    "all_day": "bool",
    "event": "json",
    "source_created_at": "timestamp",
    "source_updated_at": "timestamp",
    "published_at": "timestamp",
    "applied_at": "timestamp",
    "start_utc": "timestamp",
    "end_utc": "timestamp",
    "original_start_utc": "timestamp",
}
_REQUIRED = {
    "calendar_id",
    "event_id",
    "stream_id",
    "account",
    "generation",
    "op",
    "published_at",
    "applied_at",
    "kafka_partition",
    "kafka_offset",
    "event",
}


class Connection(Protocol):
    """The part of DB-API 2 both sqlite3 and psycopg connections provide."""

    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str
    types: Mapping[str, str]
    adapt: Callable[[Any], Any]
    json_param: str


def _sqlite_adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    if isinstance(value, bool):
        return int(value)
    return value


SQLITE = Dialect(
    "sqlite",
    "?",
    {
        "text": "TEXT",
        "bigint": "INTEGER",
        "int": "INTEGER",
        "bool": "INTEGER",
        "json": "TEXT",
        "timestamp": "TEXT",
    },
    _sqlite_adapt,
    "?",
)
POSTGRES = Dialect(
    "postgresql",
    "%s",
    {
        "text": "text",
        "bigint": "bigint",
        "int": "integer",
        "bool": "boolean",
        "json": "jsonb",
        "timestamp": "timestamptz",
    },
    lambda value: value,
    "?::jsonb",
)


class SqlStore:
    """The rebuild rule over an ``events`` table, with offsets kept in ``kafka_offsets``."""

    def __init__(self, conn: Connection, dialect: Dialect, *, now: Callable[[], datetime]):
        self._conn = conn
        self._d = dialect
        self._now = now
        self._pending: list[tuple[Any, ...]] = []
        self._current = (-1, -1)
        self.applied = 0
        # Only the fixed column names and the driver's placeholders are interpolated.
        params = ", ".join(dialect.json_param if c == "event" else "?" for c in COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
        self._upsert_sql = self._q(
            f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({params}) "  # noqa: S608
            f"ON CONFLICT (calendar_id, event_id) DO UPDATE SET {updates}"
        )

    # -- schema ------------------------------------------------------------------------------
    def create_schema(self) -> None:
        t = self._d.types
        columns = ", ".join(
            f"{c} {t[_KINDS.get(c, 'text')]}{' NOT NULL' if c in _REQUIRED else ''}"
            for c in COLUMNS
        )
        statements = [
            f"CREATE TABLE IF NOT EXISTS events ({columns}, PRIMARY KEY (calendar_id, event_id))",
            "CREATE INDEX IF NOT EXISTS events_calendar_generation "
            "ON events (calendar_id, generation)",
            "CREATE INDEX IF NOT EXISTS events_start_utc ON events (start_utc)",
            "CREATE TABLE IF NOT EXISTS kafka_offsets ("
            f"topic {t['text']} NOT NULL, kafka_partition {t['int']} NOT NULL, "
            f"next_offset {t['bigint']} NOT NULL, updated_at {t['timestamp']} NOT NULL, "
            "PRIMARY KEY (topic, kafka_partition))",
        ]
        cur = self._conn.cursor()
        for sql in statements:
            cur.execute(sql)
        self._conn.commit()

    # -- EventStore --------------------------------------------------------------------------
    def position(self, partition: int, offset: int) -> None:
        """Which record the next store operation comes from (kept in the row for audits)."""
        self._current = (partition, offset)

    def upsert(self, calendar_id: str, event_id: str, change: ChangeEvent) -> None:
        row: EventRow = to_row(
            calendar_id,
            event_id,
            change,
            applied_at=self._now(),
            partition=self._current[0],
            offset=self._current[1],
        )
        self._pending.append(tuple(self._d.adapt(v) for v in row.values()))
        self.applied += 1

    def delete(self, calendar_id: str, event_id: str) -> None:
        self._execute(
            "DELETE FROM events WHERE calendar_id = ? AND event_id = ?", calendar_id, event_id
        )
        self.applied += 1

    def delete_older(self, calendar_id: str, generation: int) -> int:
        cur = self._execute(
            "DELETE FROM events WHERE calendar_id = ? AND generation < ?",
            calendar_id,
            generation,
        )
        self.applied += 1
        return int(cur.rowcount)

    # -- transaction -------------------------------------------------------------------------
    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Write the pending rows and the next offsets of each (topic, partition), atomically."""
        self._flush()
        now = self._d.adapt(self._now())
        cur = self._conn.cursor()
        cur.executemany(
            self._q(
                "INSERT INTO kafka_offsets (topic, kafka_partition, next_offset, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (topic, kafka_partition) DO UPDATE SET "
                "next_offset = excluded.next_offset, updated_at = excluded.updated_at"
            ),
            [(topic, part, offset, now) for (topic, part), offset in offsets.items()],
        )
        self._conn.commit()

    def rollback(self) -> None:
        self._pending.clear()
        self._conn.rollback()

    def offsets(self, topic: str) -> dict[int, int]:
        """Partition -> next offset to read, as last committed."""
        cur = self._conn.cursor()
        cur.execute(
            self._q("SELECT kafka_partition, next_offset FROM kafka_offsets WHERE topic = ?"),
            (topic,),
        )
        found = {int(part): int(offset) for part, offset in cur.fetchall()}
        self._conn.commit()
        return found

    def events(self, calendar_id: str) -> dict[str, Any]:
        """Event id -> Google JSON of the calendar's rows (cancelled exceptions included)."""
        cur = self._conn.cursor()
        cur.execute(
            self._q("SELECT event_id, event FROM events WHERE calendar_id = ?"),
            (calendar_id,),
        )
        rows = cur.fetchall()
        self._conn.commit()
        return {eid: json.loads(ev) if isinstance(ev, str) else ev for eid, ev in rows}

    def close(self) -> None:
        self._conn.close()

    def _flush(self) -> None:
        if self._pending:
            self._conn.cursor().executemany(self._upsert_sql, self._pending)
            self._pending.clear()

    def _execute(self, sql: str, *params: Any) -> Any:
        self._flush()
        cur = self._conn.cursor()
        cur.execute(self._q(sql), params)
        return cur

    def _q(self, sql: str) -> str:
        """``?`` placeholders in the driver's style (no literal ``?`` appears in our SQL)."""
        return sql.replace("?", self._d.placeholder)


def open_store(url: str, *, now: Callable[[], datetime] | None = None) -> SqlStore:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``postgresql://...``."""
    clock = now or (lambda: datetime.now(UTC))
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ConfigError(["--to sqlite:///PATH needs a file path"])
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        store = SqlStore(conn, SQLITE, now=clock)
    elif url.startswith(("postgresql://", "postgres://")):
        store = SqlStore(_connect_postgres(url), POSTGRES, now=clock)
    else:
        raise ConfigError([f"--to must be sqlite:///PATH or postgresql://...: got {url!r}"])
    store.create_schema()
    return store


def _connect_postgres(url: str) -> Connection:
    import psycopg

    try:
        conn: Connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise RetriableError(f"cannot connect to PostgreSQL: {exc}") from None
    return conn
