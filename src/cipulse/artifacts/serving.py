"""How an artifact file's bytes are served so that nothing in them runs in the dashboard's origin.

Pure: the response headers for a stored file. Every answer carries ``nosniff`` (the browser keeps
the type given) and a sandboxing CSP (were it rendered as a document anyway, it would get a
unique opaque origin, no script, no plugins). Only sniffed raster images, JSON and plain text
are inline; anything a browser would treat as an active document (HTML, SVG, XML, by name or by
its first bytes) and anything binary is an attachment.
"""

from __future__ import annotations

from urllib.parse import quote

from cipulse.artifacts import classify

SANDBOX_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def _filename(path: str) -> str:
    name = path.rsplit("/", 1)[-1] or "file"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return f"filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def headers(
    *, path: str, kind: str, head: bytes, sha256: str, download: bool
) -> tuple[str, dict[str, str]]:
    """The media type and headers for a file; ``head`` is its first bytes, as served."""
    sniffed = classify.image_type(head)
    if kind == classify.IMAGE and sniffed is not None:
        media = sniffed  # from the bytes served, not only the stored label: always raster
        inline = True
    elif kind == classify.JSON:
        media = "application/json"
        inline = not classify.is_active(path, head)
    elif kind == classify.TEXT:
        media = "text/plain; charset=utf-8"
        inline = not classify.is_active(path, head)
    else:
        media = "application/octet-stream"
        inline = False
    disposition = "inline" if inline and not download else "attachment"
    return media, {
        "Content-Disposition": f"{disposition}; {_filename(path)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX_CSP,
        "Cross-Origin-Resource-Policy": "same-origin",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, max-age=3600",
        "ETag": f'"{sha256}"',
    }
