"""The usage store of a gateway without Redis: one SQLite file, written by this process only.

Every database call runs on one dedicated thread (the connection is made and used there only), so the
event loop never waits on the disk. A batch is one transaction: all of it is stored, or none. Its id
goes into `batches` in that transaction, so a batch sent again after a lost answer counts once.

Tables: `usage` (width, bucket start, the dimensions, the counters), `spend` (period, kind, name,
nano-dollars, when it may be dropped), `rates` (key, minute, requests, tokens) and `batches` (id,
when applied). A dimension that is None (no key, no user) is stored as "" because SQLite holds NULLs
distinct in a primary key, which would split one bucket into many; it reads back as None.
Old rows are pruned inside a write, at most once a minute (retention: see gateway.accounting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gateway.accounting import BATCH_MARK_KEPT_S, RATE_MINUTES_KEPT, WIDTHS, buckets, kept_s, period_expiry
from gateway.accounting.ledger import RECENT_FAILOVERS, Batch, Row, Totals
from gateway.accounting.usage import COUNTERS, DIMENSIONS, Dims

log = logging.getLogger("gateway.accounting")
T = TypeVar("T")
PRUNE_EVERY_S = 60.0
NULLABLE = tuple(DIMENSIONS.index(name) for name in ("key", "user"))  # the dimensions that may be None

_DIMS = ", ".join(f'"{name}"' for name in DIMENSIONS)
_COUNTERS = ", ".join(f'"{name}"' for name in COUNTERS)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS usage (
  width TEXT NOT NULL, bucket INTEGER NOT NULL,
  {", ".join(f'"{name}" TEXT NOT NULL' for name in DIMENSIONS)},
  {", ".join(f'"{name}" INTEGER NOT NULL' for name in COUNTERS)},
  PRIMARY KEY (width, bucket, {_DIMS})
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend (
  period TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, nano INTEGER NOT NULL, expires INTEGER NOT NULL,
  PRIMARY KEY (period, kind, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rates (
  "key" TEXT NOT NULL, minute INTEGER NOT NULL, requests INTEGER NOT NULL, tokens INTEGER NOT NULL,
  PRIMARY KEY ("key", minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, applied INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failovers (seq INTEGER PRIMARY KEY AUTOINCREMENT, entry BLOB NOT NULL);
"""
_MARKS = ", ".join("?" * (2 + len(DIMENSIONS) + len(COUNTERS)))  # width, bucket, the dimensions, the counters
ADD_USAGE = (
    f"INSERT INTO usage (width, bucket, {_DIMS}, {_COUNTERS}) VALUES ({_MARKS})"
    f" ON CONFLICT (width, bucket, {_DIMS}) DO UPDATE SET "
    + ", ".join(f'"{name}" = "{name}" + excluded."{name}"' for name in COUNTERS)
)
ADD_SPEND = (
    "INSERT INTO spend (period, kind, name, nano, expires) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (period, kind, name) DO UPDATE SET nano = nano + excluded.nano"
)
ADD_RATES = (
    'INSERT INTO rates ("key", minute, requests, tokens) VALUES (?, ?, ?, ?)'
    ' ON CONFLICT ("key", minute) DO UPDATE SET requests = requests + excluded.requests,'
    " tokens = tokens + excluded.tokens"
)
READ_ROWS = (
    f"SELECT bucket, {_DIMS}, {_COUNTERS} FROM usage WHERE width = ? AND bucket >= ? AND bucket < ? ORDER BY bucket"
)


class SqliteUsageStore:
    shared = False

    def __init__(self, path: str, retention_days: int) -> None:
        self.path = path
        self.retention_days = retention_days
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-sqlite")
        self._state = "starting"  # then "ok", or "down" while the file cannot be used
        self._last_error = ""
        # Touched on the store's thread only:
        self._db: sqlite3.Connection | None = None
        self._pruned_at = 0.0

    # -- the contract (on the event loop) ---------------------------------------------------------

    async def start(self) -> None:
        await self._run(self._connection)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):  # a write in progress finishes first, on the same thread
                await self._run(self._close)
        self._executor.shutdown(wait=False)

    async def write(self, batch: Batch) -> bool:
        return bool(await self._run(self._write, batch))

    async def totals(self, spend_periods: list[str], minute: int) -> Totals | None:
        return await self._run(self._totals, list(spend_periods), minute)

    async def rows(self, width: str, start: int, end: int) -> list[Row] | None:
        if width not in WIDTHS:
            return None
        return await self._run(self._rows, width, start, end)

    async def recent_failovers(self) -> list[bytes] | None:
        return await self._run(self._recent_failovers)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"backend": "sqlite", "state": self._state, "path": self.path}
        if self._state != "ok" and self._last_error:
            status["last_error"] = self._last_error
        return status

    async def _run(self, work: Callable[..., T], *args: Any) -> T | None:
        """Run `work` on the store's thread; None (and a warning, once per outage) when it failed."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # sqlite3 errors, a full disk, or the store already closed
            self._last_error = f"{type(exc).__name__}: {exc}"[:200]
            if self._state != "down":
                log.warning("usage store %s unavailable (%s); usage is kept in memory", self.path, self._last_error)
            self._state = "down"
            return None
        if self._state == "down":
            log.warning("usage store %s is writable again", self.path)
        self._state = "ok"
        return result

    # -- on the store's thread --------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # Autocommit mode: every transaction is begun and ended here, explicitly.
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout = 5000")
                db.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
                db.execute("PRAGMA synchronous = NORMAL")  # with WAL: safe from a crash of the process
                db.executescript(SCHEMA)
                _add_new_counters(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    def _write(self, batch: Batch) -> bool:
        db = self._connection()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("INSERT OR IGNORE INTO batches (id, applied) VALUES (?, ?)", (batch.id, int(now))).rowcount:
                db.executemany(ADD_USAGE, _usage_rows(batch))
                db.executemany(
                    ADD_SPEND,
                    [
                        (period, kind, name, nano, period_expiry(period))
                        for (kind, name, period), nano in batch.spend.items()
                    ],
                )
                db.executemany(ADD_RATES, [(key, minute, r, t) for (key, minute), (r, t) in batch.rates.items()])
                if batch.failovers:
                    db.executemany("INSERT INTO failovers (entry) VALUES (?)", [(e,) for e in batch.failovers])
                    keep = (RECENT_FAILOVERS,)
                    db.execute("DELETE FROM failovers WHERE seq <= (SELECT MAX(seq) FROM failovers) - ?", keep)
            pruning = now - self._pruned_at >= PRUNE_EVERY_S
            if pruning:
                self._prune(db, now)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        if pruning:
            self._pruned_at = now
        return True

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        for width in WIDTHS:
            db.execute(
                "DELETE FROM usage WHERE width = ? AND bucket < ?", (width, now - kept_s(width, self.retention_days))
            )
        db.execute("DELETE FROM spend WHERE expires < ?", (now,))
        db.execute("DELETE FROM rates WHERE minute < ?", (int(now // 60) - RATE_MINUTES_KEPT,))
        db.execute("DELETE FROM batches WHERE applied < ?", (now - BATCH_MARK_KEPT_S,))

    def _totals(self, spend_periods: list[str], minute: int) -> Totals:
        db = self._connection()
        marks = ", ".join("?" * len(spend_periods))
        spend = {
            (kind, name, period): nano
            for period, kind, name, nano in db.execute(
                f"SELECT period, kind, name, nano FROM spend WHERE period IN ({marks})", spend_periods
            )
        }
        rates = {
            (key, at): [requests, tokens]
            for key, at, requests, tokens in db.execute(
                'SELECT "key", minute, requests, tokens FROM rates WHERE minute IN (?, ?)', (minute, minute - 1)
            )
        }
        return Totals(spend, rates)

    def _recent_failovers(self) -> list[bytes]:
        query = "SELECT entry FROM failovers ORDER BY seq DESC LIMIT ?"
        return [bytes(entry) for (entry,) in self._connection().execute(query, (RECENT_FAILOVERS,))]

    def _rows(self, width: str, start: int, end: int) -> list[Row]:
        rows: list[Row] = []
        for bucket, *values in self._connection().execute(READ_ROWS, (width, start, end)):
            dims = values[: len(DIMENSIONS)]
            for index in NULLABLE:
                if dims[index] == "":
                    dims[index] = None
            rows.append((bucket, tuple(dims), values[len(DIMENSIONS) :]))  # type: ignore[arg-type]
        return rows


def _add_new_counters(db: sqlite3.Connection) -> None:
    """A file written before a counter existed gets its column, counting from 0."""
    present = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
    for name in COUNTERS:
        if name not in present:
            db.execute(f'ALTER TABLE usage ADD COLUMN "{name}" INTEGER NOT NULL DEFAULT 0')


def _usage_rows(batch: Batch) -> list[tuple[Any, ...]]:
    rows = []
    for (width, bucket, dims), counters in buckets(batch.usage).items():
        rows.append((width, bucket, *_stored(dims), *counters))
    return rows


def _stored(dims: Dims) -> tuple[str, ...]:
    return tuple("" if value is None else value for value in dims)
