"""Who holds a claim on shared work, and whether that process is gone.

Work is claimed in the database (a conditional UPDATE) so several processes can share it. A
claim also names its holder as ``host:pid@start``, where ``start`` is when the process started
(from ``/proc/<pid>/stat``, in clock ticks since boot). A process of this host that died with
claims (killed mid-burst, say) loses them at once instead of when they time out, even when it
comes back with the same pid, as PID 1 of a container restarted in place does: the pid is the
same, its start time is not. Without ``/proc`` the start is a random token, which proves only that
a holder with this process's pid is an earlier process.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

_identity: tuple[int, str] | None = None


def start_time(pid: int) -> str | None:
    """The process's start in clock ticks since boot, or None when it does not exist or /proc
    cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            raw = stat.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")": skip past it.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 and fields[19].isdigit() else None


def process_id() -> str:
    """This process as a claim holder; computed again after a fork."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        start = start_time(pid) or f"r{secrets.token_hex(8)}"
        _identity = (pid, f"{socket.gethostname()}:{pid}@{start}")
    return _identity[1]


def holder_is_dead(holder: str | None) -> bool:
    """True only when the holder was a process of this host that is certainly gone.

    A holder on another host, or one whose liveness cannot be told, counts as alive: its claim
    then lapses when its time runs out.
    """
    if not holder or holder == process_id():
        return False
    host, _, rest = holder.rpartition(":")
    pid_text, _, start = rest.partition("@")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # this pid, but not this process: an earlier one, restarted in place
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, but another user's: its start time still tells whether it is the holder
    if not start.isdigit():
        return False  # an old-style host:pid holder, or a random token: cannot tell
    current = start_time(pid)
    return current is not None and current != start


# -- claiming rows of a work queue --------------------------------------------------------------


def release_dead(session: Session, model: Any, now: datetime) -> None:
    """Free at once the claims of holders that are certainly gone (see ``holder_is_dead``)."""
    holders = session.scalars(
        select(model.claimed_by).where(model.claimed_until >= now).distinct()
    ).all()
    for holder in holders:
        if holder_is_dead(holder):
            session.execute(
                update(model)
                .where(model.claimed_by == holder)
                .values(claimed_until=None, claimed_by=None)
            )


def claim_pending(
    session: Session,
    model: Any,
    *,
    now: datetime,
    limit: int,
    seconds: float,
    order_by: Sequence[Any],
) -> list[int]:
    """Claim up to ``limit`` due ``pending`` rows of ``model`` for this process; their ids.

    ``model`` has ``id``, ``state``, ``next_attempt_at``, ``claimed_until`` and ``claimed_by``.
    Each row is taken by a conditional ``UPDATE``, so two processes never both get one.
    """
    release_dead(session, model, now)
    free = or_(model.claimed_until.is_(None), model.claimed_until < now)
    ids = session.scalars(
        select(model.id)
        .where(model.state == "pending", model.next_attempt_at <= now, free)
        .order_by(*order_by)
        .limit(limit)
    ).all()
    me = process_id()
    mine = []
    for row_id in ids:
        result = session.execute(
            update(model)
            .where(model.id == row_id, model.state == "pending", free)
            .values(claimed_until=now + timedelta(seconds=seconds), claimed_by=me)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            mine.append(row_id)
    return mine
