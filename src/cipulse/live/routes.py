from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from cipulse.context import AppContext

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])


@router.websocket("/ws/metrics")
async def ws_metrics(websocket: WebSocket, minutes: int = 1440) -> None:
    """Sends the summary on connect, then a ``metrics_update`` after each ingest."""
    ctx: AppContext = websocket.app.state.ctx
    if not 1 <= minutes <= 366 * 24 * 60:
        await websocket.close(code=1008, reason="minutes must be between 1 and 527040")
        return
    await websocket.accept()
    broadcaster = ctx.broadcaster
    queue = broadcaster.add_client(minutes)
    receiver = asyncio.create_task(_drain(websocket))
    try:
        await websocket.send_json(await asyncio.to_thread(broadcaster.message, minutes))
        while not receiver.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await websocket.send_json(getter.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        broadcaster.remove_client(minutes, queue)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _drain(websocket: WebSocket) -> None:
    """Reads (and ignores) client messages so that a disconnect is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
