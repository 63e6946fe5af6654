"""Engines and the unit of work.

SQLite gets WAL and a busy timeout so that the web server, the scheduler and the CLI can share one
file; writing transactions start with ``BEGIN IMMEDIATE`` so that two writers queue on the busy
timeout instead of failing when a read lock cannot be upgraded.

Within one process, SQLite writers also queue first come, first served on ``WriteQueue``: SQLite's
busy handler sleeps in steps of up to 100 ms instead of waking the next writer, and a busy writer
(the webhook worker) retakes the lock before a sleeper wakes, so a short insert could wait seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "cipulse_write"
WRITE_QUEUE_SECONDS = 30.0  # as long as SQLite's busy timeout

log = logging.getLogger(__name__)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would otherwise defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


class WriteQueue:
    """A lock handed to its waiters in the order they asked for it.

    A thread that already holds it passes straight through (a nested write then meets SQLite's
    own lock, as it would without this queue). A waiter that gives up after ``timeout`` goes on
    without it and is left to SQLite's busy timeout, so a stuck writer cannot wedge the others.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._owner: int | None = None

    def held_by_me(self) -> bool:
        return self._owner == threading.get_ident()

    def has_waiters(self) -> bool:
        return bool(self._waiters)

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner is None:
                self._owner = me
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            self._owner = me
            return True
        with self._mutex:
            if turn in self._waiters:
                self._waiters.remove(turn)
                return False
        # Handed over between the timeout and the mutex: it is ours after all.
        turn.wait()
        self._owner = me
        return True

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._owner = -1  # taken by the next waiter as it wakes, never free meanwhile
                self._waiters.popleft().set()
            else:
                self._owner = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self.held_by_me():
            yield
            return
        if not self.acquire(WRITE_QUEUE_SECONDS):
            log.warning("waited %.0f s for other SQLite writers; going on", WRITE_QUEUE_SECONDS)
            yield
            return
        try:
            yield
        finally:
            self.release()


_TX_MEMO = "cipulse_tx_memo"


def tx_memo(session: Session, name: str) -> dict[Any, Any]:
    """What this transaction has already read or written, to skip repeating it.

    Forgotten when the transaction commits or rolls back (a savepoint's rollback too), since
    another transaction may change the rows in between or the rollback undoes the writes.
    """
    memo: dict[str, dict[Any, Any]] = session.info.setdefault(_TX_MEMO, {})
    return memo.setdefault(name, {})


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    session.info.pop(_TX_MEMO, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_TX_MEMO, None)


class UnitOfWork:
    """One transaction plus the side effects that may only happen once it has committed."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


class Database:
    """Engine plus session factories; counts sessions in use so shutdown can wait for them.

    Work handed to a thread (``asyncio.to_thread``) outlives the cancellation of its task; if
    the engine were disposed under it, its connection would be left for the garbage collector.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._active = 0
        self._idle = threading.Condition()
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_queue = WriteQueue() if self.is_sqlite else None
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def writers_waiting(self) -> bool:
        """Another writer of this process waits for SQLite's lock (never on PostgreSQL)."""
        return self._write_queue is not None and self._write_queue.has_waiters()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._tracked(), self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """Commit on success, roll back on error; after-commit callbacks run only after commit."""
        queued = self._write_queue.turn() if self._write_queue else contextlib.nullcontext()
        with self._tracked(), queued, self._writer() as session:
            uow = UnitOfWork(session)
            try:
                yield uow
                session.commit()
            except BaseException:
                session.rollback()
                raise
        uow._run_after_commit()

    def dispose(self, *, wait_seconds: float = 10.0) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=wait_seconds)
        self.engine.dispose()


# -- PostgreSQL LISTEN/NOTIFY: how processes that share a database wake each other --------------

NOTIFY_LIMIT = 7900  # PostgreSQL refuses payloads of 8000 bytes or more


def notify(session: Session, channel: str, payload: str = "") -> None:
    """Sent when the transaction commits, and not at all if it rolls back (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(channel, payload)))


async def listen(
    url: str,
    handlers: Mapping[str, Callable[[str], None]],
    *,
    on_connect: Callable[[], None] | None = None,
    retry_seconds: float = 5.0,
) -> None:
    """Call ``handlers[channel](payload)`` for each notification, until cancelled.

    Reconnects after an error; ``on_connect`` runs after each (re)connection, since whatever was
    notified while disconnected is lost.
    """
    import psycopg  # only PostgreSQL deployments listen

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                for channel in handlers:
                    await conn.execute(f'LISTEN "{channel}"')
                if on_connect is not None:
                    on_connect()
                async for note in conn.notifies():
                    handlers[note.channel](note.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "LISTEN on %s failed, again in %.0f s: %s", list(handlers), retry_seconds, exc
            )
            await asyncio.sleep(retry_seconds)
