"""Engines and the unit of work.

SQLite gets WAL and a busy timeout so that the web server, the scheduler and the CLI can share one
file; writing transactions start with ``BEGIN IMMEDIATE`` so that two writers queue on the busy
timeout instead of failing when a read lock cannot be upgraded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "cipulse_write"


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

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._tracked(), self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """Commit on success, roll back on error; after-commit callbacks run only after commit."""
        with self._tracked(), self._writer() as session:
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
