"""Deliveries stored many to a transaction and processed many to a transaction, and what a
failure inside such a batch does; and the upkeep passes that give way to a webhook burst."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from cipulse.db import Database, tx_memo
from cipulse.github.webhooks import parse_delivery
from cipulse.live.bus import Bus
from cipulse.models import (
    Job,
    Repository,
    RollupDirtyDay,
    RunDaily,
    WebhookDelivery,
    WorkflowRun,
    utcnow,
)
from cipulse.stats import repository as stats_repo
from cipulse.stats import tasks as stats_tasks
from cipulse.webhooks import repository as inbox
from cipulse.webhooks.tasks import InboxWriter, WebhookWorker
from tests.conftest import SHARED

JOB_EVENTS = SHARED / "fixtures" / "real" / "webhooks" / "workflow_job"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def job_payload(job_id: int, status: str = "queued") -> dict[str, Any]:
    data = json.loads((JOB_EVENTS / f"{status}.payload.json").read_text())
    data["workflow_job"]["id"] = job_id
    return data


def raw(event: str, payload: dict[str, Any], delivery: str | None = None) -> tuple[Any, bytes]:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
    }
    return parse_delivery(headers, body), body


def store_all(db: Database, deliveries: list[tuple[Any, bytes]]) -> list[int]:
    with db.write() as uow:
        ids = [inbox.store(uow.session, d, body, now=utcnow()) for d, body in deliveries]
    assert all(i is not None for i in ids)
    return [i for i in ids if i is not None]


def count_commits(db: Database) -> list[int]:
    commits = [0]

    @event.listens_for(db.engine, "commit")
    def _counted(conn: Any) -> None:
        commits[0] += 1

    return commits


def test_a_burst_is_processed_in_few_transactions(db: Database) -> None:
    store_all(db, [raw("workflow_job", job_payload(7_000_000 + i)) for i in range(30)])
    worker = WebhookWorker(db=db, bus=Bus())
    commits = count_commits(db)
    assert worker.process_due() == 30
    # One to claim, one for the batch (it ends early only for waiting writers or the clock).
    assert commits[0] <= 3
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 30
        states = s.scalars(select(WebhookDelivery.state)).all()
    assert set(states) == {"processed"}


def test_one_failing_delivery_in_a_batch_leaves_the_others_processed(db: Database) -> None:
    bad = job_payload(7_100_000)
    del bad["workflow_job"]["run_id"]  # our handler cannot store this one
    deliveries = [raw("workflow_job", job_payload(7_100_001 + i)) for i in range(5)]
    deliveries.insert(2, raw("workflow_job", bad))
    ids = store_all(db, deliveries)
    worker = WebhookWorker(db=db, bus=Bus())
    assert worker.process_due() == 6
    with db.read() as s:
        rows = {d.id: d for d in s.scalars(select(WebhookDelivery))}
        jobs = s.scalar(select(func.count()).select_from(Job))
    assert jobs == 5
    failed = rows[ids[2]]
    assert failed.state == "pending" and failed.attempts == 1 and failed.next_attempt_at
    assert "run_id" in (failed.last_error or "")
    assert failed.claimed_by is None
    assert all(rows[i].state == "processed" and rows[i].attempts == 1 for i in ids if i != ids[2])


def test_a_batch_gives_way_to_a_waiting_writer(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("only SQLite's writers wait for one another in this process")
    store_all(db, [raw("workflow_job", job_payload(7_200_000 + i)) for i in range(10)])
    worker = WebhookWorker(db=db, bus=Bus())
    waiting = iter([False, True] + [False] * 50)
    db.writers_waiting = lambda: next(waiting)  # type: ignore[method-assign]
    commits = count_commits(db)
    assert worker.process_due() == 10
    assert commits[0] == 3  # the claim, the two deliveries before the waiter, the other eight


def test_the_worker_stands_back_while_a_delivery_is_answered(db: Database) -> None:
    worker = WebhookWorker(db=db, bus=Bus())
    assert not worker.answered_within(60)
    with worker.acknowledging():
        assert worker.answered_within(0)
        assert not worker._no_acks.is_set()
    assert worker._no_acks.is_set()
    assert worker.answered_within(60)


def test_inbox_writer_stores_concurrent_deliveries_together(db: Database) -> None:
    woken: list[int] = []
    writer = InboxWriter(db=db, on_stored=lambda: woken.append(1))
    commits = count_commits(db)
    guid = str(uuid.uuid4())
    deliveries = [raw("workflow_job", job_payload(7_300_000 + i)) for i in range(40)]
    deliveries.append(raw("ping", {"zen": "Keep it logically awesome."}, delivery=guid))
    deliveries.append(raw("ping", {"zen": "Keep it logically awesome."}, delivery=guid))

    async def burst() -> list[int | None]:
        return await asyncio.gather(*(writer.store(d, body) for d, body in deliveries))

    try:
        ids = asyncio.run(burst())
    finally:
        writer.close()
    stored = [i for i in ids if i is not None]
    assert len(stored) == len(set(stored)) == 41
    assert ids[-1] is None or ids[-2] is None  # the same GUID twice is stored once
    assert commits[0] < 41 and woken
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 41


def test_inbox_writer_gives_a_failing_delivery_its_own_error(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = InboxWriter(db=db, on_stored=lambda: None)
    deliveries = [raw("workflow_job", job_payload(7_400_000 + i)) for i in range(3)]
    poisoned = deliveries[1][0].delivery_id
    real_store = inbox.store

    def store(session: Any, delivery: Any, body: bytes, *, now: datetime) -> int | None:
        if delivery.delivery_id == poisoned:
            raise ValueError("cannot store this one")
        return real_store(session, delivery, body, now=now)

    monkeypatch.setattr(inbox, "store", store)

    async def burst() -> list[Any]:
        return await asyncio.gather(
            *(writer.store(d, body) for d, body in deliveries), return_exceptions=True
        )

    try:
        results = asyncio.run(burst())
    finally:
        writer.close()
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], ValueError)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 2


# -- what a transaction remembers ------------------------------------------------------------


def test_tx_memo_is_forgotten_on_commit_and_on_a_savepoint_rollback(db: Database) -> None:
    with db.write() as uow:
        repo = Repository(owner="o", name="r", full_name="o/r", branches=[])
        uow.session.add(repo)
        uow.session.flush()
        day = date(2026, 11, 1)
        with pytest.raises(RuntimeError), uow.session.begin_nested():
            stats_repo.mark_dirty(uow.session, repo.id, [datetime(2026, 11, 1, 3, tzinfo=UTC)])
            assert tx_memo(uow.session, "dirty_marks")
            raise RuntimeError
        assert not tx_memo(uow.session, "dirty_marks")  # the mark was undone: write it again
        stats_repo.mark_dirty(uow.session, repo.id, [datetime(2026, 11, 1, 3, tzinfo=UTC)])
    with db.read() as s:
        assert s.scalars(select(RollupDirtyDay.day)).all() == [day]
    with db.write() as uow:
        assert not tx_memo(uow.session, "dirty_marks")


# -- the rollup pass on SQLite: computed from a snapshot, written briefly -----------------------


def _run(db: Database, repo_id: int, github_id: int, created: datetime) -> None:
    with db.write() as uow:
        uow.session.add(
            WorkflowRun(
                github_id=github_id,
                run_attempt=1,
                repository_id=repo_id,
                name="CI",
                status="completed",
                conclusion="success",
                head_branch="main",
                created_at=created,
                updated_at=created,
            )
        )
        stats_repo.mark_dirty(uow.session, repo_id, [created])


def test_a_mark_written_again_during_the_pass_survives_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL claims its marks instead")
    now = utcnow().replace(minute=30)
    with db.write() as uow:
        repo = Repository(owner="o", name="r", full_name="o/r", branches=[])
        uow.session.add(repo)
        uow.session.flush()
        repo_id = repo.id
    _run(db, repo_id, 1, now - timedelta(minutes=5))
    planned = stats_tasks.plan

    def plan_then_write_again(*args: Any, **kwargs: Any) -> stats_tasks.Plan:
        result = planned(*args, **kwargs)
        _run(db, repo_id, 2, now - timedelta(minutes=4))  # a webhook after the snapshot
        return result

    monkeypatch.setattr(stats_tasks, "plan", plan_then_write_again)
    assert stats_tasks.rollup_pending(db, now=now, max_batches=1) == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(RollupDirtyDay)) == 1
    monkeypatch.setattr(stats_tasks, "plan", planned)
    stats_tasks.rollup_pending(db, now=now)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(RollupDirtyDay)) == 0
        runs = s.scalar(select(func.sum(RunDaily.runs)).where(RunDaily.branch == "main"))
    assert runs == 2


def test_rollup_waits_for_a_burst_but_not_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[float] = []

    class Busy:
        def answered_within(self, seconds: float) -> bool:
            return True

    class Ctx:
        webhook_worker = Busy()
        db = None

    monkeypatch.setattr(stats_tasks, "MAX_DEFER_SECONDS", 3.0)
    monkeypatch.setattr(stats_tasks, "rollup_pending", lambda db: passes.append(1) or 0)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(passes) >= 2:
            raise asyncio.CancelledError

    monkeypatch.setattr(stats_tasks.asyncio, "sleep", fake_sleep)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(stats_tasks.rollup_forever(Ctx(), every_seconds=5))  # type: ignore[arg-type]
    # Three one-second waits for the burst, a pass and its pause; the same again.
    assert slept == [1.0, 1.0, 1.0, 5, 1.0, 1.0, 1.0, 5]
    assert len(passes) == 2
