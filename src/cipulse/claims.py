"""Who holds a claim on shared work, and whether that process is gone.

Work is claimed in the database (a conditional UPDATE) so several processes can share it. A
claim also names its holder as host:pid: a process of this host that died with claims (killed
mid-burst, say) loses them at once instead of when they time out.
"""

from __future__ import annotations

import os
import socket


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(holder: str | None) -> bool:
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
