"""Errors worth one clear line to the user; never carrying the token."""

from __future__ import annotations

from datetime import datetime


class GitHubError(Exception):
    """Anything that stopped a GitHub call; ``str()`` is a sentence for the CLI and the UI."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BadCredentials(GitHubError):
    pass


class NotFound(GitHubError):
    pass


class Forbidden(GitHubError):
    pass


class Gone(GitHubError):
    pass


class RateLimited(GitHubError):
    def __init__(self, message: str, *, reset_at: datetime | None = None) -> None:
        super().__init__(message, status=403)
        self.reset_at = reset_at


class Unreachable(GitHubError):
    pass
