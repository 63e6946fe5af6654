"""Claim holders name one process start: a restarted process takes a dead holder's work at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from cipulse import claims
from cipulse.db import Database
from cipulse.models import SyncState, WebhookDelivery, utcnow
from cipulse.sync import repository as sync_repo
from cipulse.webhooks import repository as inbox

HOST = socket.gethostname()


def me_restarted() -> str:
    """This host and pid, but another start: what PID 1 of a container restarted in place finds."""
    start = claims.start_time(os.getpid())
    assert start is not None
    return f"{HOST}:{os.getpid()}@{int(start) - 1}"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_holder_names_host_pid_and_start() -> None:
    holder = claims.process_id()
    assert holder == f"{HOST}:{os.getpid()}@{claims.start_time(os.getpid())}"
    assert holder == claims.process_id()
    assert not claims.holder_is_dead(holder)


def test_same_pid_restarted_in_place_is_dead() -> None:
    assert claims.holder_is_dead(me_restarted())
    assert claims.holder_is_dead(f"{HOST}:{os.getpid()}")  # a holder from before start times
    assert claims.holder_is_dead(f"{HOST}:{os.getpid()}@r0123456789abcdef")


def test_live_process_is_alive_and_a_reused_pid_is_not_it(
    sleeper: subprocess.Popen[bytes],
) -> None:
    start = claims.start_time(sleeper.pid)
    assert start is not None
    assert not claims.holder_is_dead(f"{HOST}:{sleeper.pid}@{start}")
    assert claims.holder_is_dead(f"{HOST}:{sleeper.pid}@{int(start) + 7}")
    sleeper.kill()
    sleeper.wait()
    assert claims.holder_is_dead(f"{HOST}:{sleeper.pid}@{start}")


def test_what_cannot_be_told_counts_as_alive(sleeper: subprocess.Popen[bytes]) -> None:
    assert not claims.holder_is_dead(None)
    assert not claims.holder_is_dead("")
    assert not claims.holder_is_dead(f"another-{HOST}:{os.getpid()}@1")  # another host
    assert not claims.holder_is_dead(f"{HOST}:{sleeper.pid}")  # alive, old style
    assert not claims.holder_is_dead(f"{HOST}:{sleeper.pid}@rnotastarttime")
    assert not claims.holder_is_dead("garbage")


def pending_delivery(db: Database, n: int, holder: str) -> int:
    now = utcnow()
    with db.write() as uow:
        row = WebhookDelivery(
            hook_id="1",
            delivery_id=f"d-{n}",
            event="ping",
            headers={},
            body=b"{}",
            received_at=now,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            claimed_until=now + timedelta(seconds=inbox.CLAIM_SECONDS),
            claimed_by=holder,
        )
        uow.session.add(row)
        uow.session.flush()
        return row.id


def test_inbox_takes_back_a_restarted_holders_claims_at_once(db_url: str) -> None:
    db = Database(db_url)
    dead = pending_delivery(db, 1, me_restarted())
    alive = pending_delivery(db, 2, f"another-{HOST}:1@1")
    with db.write() as uow:
        taken = [d.id for d in inbox.claim_due(uow.session, now=utcnow())]
    assert taken == [dead]
    with db.read() as s:
        assert s.get_one(WebhookDelivery, dead).claimed_by == claims.process_id()
        assert s.get_one(WebhookDelivery, alive).claimed_by == f"another-{HOST}:1@1"
    db.dispose()


def test_inbox_takes_back_a_killed_process_claims(db_url: str) -> None:
    """Another process claims deliveries and is killed; this one takes them without waiting."""
    db = Database(db_url)
    ids = [pending_delivery(db, n, "") for n in range(3)]
    with db.write() as uow:  # free them: the child claims them anew under its own name
        for row in uow.session.scalars(select(WebhookDelivery)):
            row.claimed_until = None
            row.claimed_by = None
    script = textwrap.dedent(
        f"""
        import sys, time
        from cipulse.db import Database
        from cipulse.models import utcnow
        from cipulse.webhooks import repository as inbox
        db = Database({db_url!r})
        with db.write() as uow:
            n = len(inbox.claim_due(uow.session, now=utcnow()))
        print(n, flush=True)
        time.sleep(120)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"3"
        with db.write() as uow:  # the holder is alive: nothing to take
            assert inbox.claim_due(uow.session, now=utcnow()) == []
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    with db.write() as uow:
        assert [d.id for d in inbox.claim_due(uow.session, now=utcnow())] == ids
    db.dispose()


def test_sync_claim_of_a_restarted_holder_is_free(db_url: str) -> None:
    db = Database(db_url)
    now = utcnow()
    with db.write() as uow:
        repo = sync_repo.track_repo(uow.session, "octo/claims", [])
        uow.session.flush()
        repo_id = repo.id
        state = sync_repo.state(uow.session, repo_id)
        state.claimed_by = f"another-{HOST}:1@1"
        state.claimed_until = now + timedelta(seconds=300)
    with db.write() as uow:
        assert sync_repo.claim(uow.session, repo_id, now=now, seconds=60) == f"another-{HOST}:1@1"
    with db.write() as uow:
        uow.session.get_one(SyncState, repo_id).claimed_by = me_restarted()
    with db.write() as uow:
        assert sync_repo.claim(uow.session, repo_id, now=now, seconds=60) is None
    with db.read() as s:
        assert s.get_one(SyncState, repo_id).claimed_by == claims.process_id()
    db.dispose()
