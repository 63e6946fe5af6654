"""Fixtures: real SQLite and real PostgreSQL, each migrated once per test worker.

PostgreSQL tests are skipped with a visible reason when no server answers, except under
``CI=true``, where a missing server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

from cipulse import migrate
from cipulse.app import create_app
from cipulse.db import make_engine
from cipulse.models import Base
from cipulse.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "test-artifacts"
PG_ADMIN_URL = os.environ.get(
    "CIPULSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]

# Two workers share two cores with the browser and both databases: time says nothing here.
hypothesis_settings.register_profile(
    "cipulse", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("cipulse")


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment() -> Iterator[None]:
    """Settings on the developer's machine must not leak into the tests."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("CIPULSE_") or k == "GITHUB_TOKEN"}
    for key in saved:
        if key != "CIPULSE_TEST_POSTGRES_URL":
            del os.environ[key]
    yield
    os.environ.update(saved)


def _postgres_database(worker: str) -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required under CI=true)")
        pytest.skip(reason)
    name = f"cipulse_test_{worker}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database of each kind, shared by the tests of one worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if request.param == "sqlite":
        gen: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"])
    else:
        gen = _postgres_database(worker)
    url = next(gen)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    for _ in gen:
        pass


def wipe(url: str) -> None:
    engine = make_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


@pytest.fixture
def db_url(database_url: str) -> str:
    wipe(database_url)
    return database_url


@pytest.fixture
def make_settings(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": db_url,
            "data_dir": tmp_path,
            "live_min_interval_ms": 0,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture
def settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings()  # type: ignore[no-any-return]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
