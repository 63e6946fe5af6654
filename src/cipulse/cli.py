"""The ``cipulse`` command."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

from cipulse.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="cipulse: CI health and observability for GitHub Actions and any CI.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
repo_app = typer.Typer(help="Repositories synced from GitHub.", no_args_is_help=True)
app.add_typer(repo_app, name="repo")
webhooks_app = typer.Typer(help="GitHub webhook deliveries.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
out = Console()
err = Console(stderr=True)

HostOption = Annotated[
    str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to your network.")
]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _preflight(settings: Settings) -> None:
    """Fail with one clear line, not a traceback, when the database cannot be used."""
    from cipulse import migrate
    from cipulse.db import make_engine

    try:
        engine = make_engine(settings.resolved_database_url)
    except Exception as exc:
        err.print(f"[red]error:[/red] cannot open the database: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    try:
        if settings.auto_migrate:
            migrate.upgrade(engine)
        elif migrate.current_revision(engine) != migrate.head_revision(engine):
            err.print(
                "[red]error:[/red] the database schema is not up to date and "
                "CIPULSE_AUTO_MIGRATE is off: run `cipulse db upgrade` first"
            )
            raise typer.Exit(1)
    except typer.Exit:
        raise
    except Exception as exc:
        err.print(f"[red]error:[/red] cannot use the database: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _serve(settings: Settings, host: str, port: int, *, demo: bool) -> None:
    from cipulse import worker
    from cipulse.app import create_app
    from cipulse.simulator import tasks as demo_tasks

    _preflight(settings)

    jobs: list[Any] = [worker.freeze_after_startup]
    if demo:

        async def seed_then_tick(ctx):  # type: ignore[no-untyped-def]
            import asyncio

            created = await asyncio.to_thread(demo_tasks.seed_history, ctx)
            if created:
                logging.getLogger("cipulse.demo").info("seeded %d demo runs", created)
            await asyncio.to_thread(demo_tasks.seed_github, ctx)
            await demo_tasks.tick_forever(ctx)

        jobs.append(seed_then_tick)
    app_ = create_app(settings, background=jobs)
    err.print(f"cipulse dashboard on [bold]http://{host}:{port}/[/bold]  (Ctrl+C stops)")
    uvicorn.run(app_, host=host, port=port, log_level=settings.log_level.lower())


@app.command()
def serve(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Run the dashboard, API and background workers in one process."""
    settings = _settings()
    _logging(settings)
    _serve(settings, host, port, demo=False)


@app.command("worker")
def worker_command() -> None:
    """Process webhook deliveries without serving HTTP, beside `serve` processes that have
    CIPULSE_WEBHOOK_WORKER_IN_SERVE=false (PostgreSQL). Stops on Ctrl+C or SIGTERM."""
    import asyncio

    from cipulse import worker

    settings = _settings()
    _logging(settings)
    _preflight(settings)
    asyncio.run(worker.run(settings))


@app.command()
def demo(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Serve with a month of simulated history and a new simulated run every few seconds.

    Uses its own database (demo.db in the data dir) unless CIPULSE_DATABASE_URL is set, so demo
    data never mixes with real data. GitHub credentials and CIPULSE_REPOS are ignored: the demo's
    repositories are made up, and nothing may ask GitHub about them.
    """
    base = _settings()
    overrides: dict[str, object] = {}
    if base.database_url is None:
        overrides["database_url"] = f"sqlite:///{base.data_dir / 'demo.db'}"
    settings = _settings(**overrides).model_copy(
        update={
            "github_token": None,
            "github_app_id": None,
            "github_app_private_key_file": None,
            "repos": [],
        }
    )
    _logging(settings)
    _serve(settings, host, port, demo=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations (run this on deploy when CIPULSE_AUTO_MIGRATE is off)."""
    from cipulse import migrate
    from cipulse.db import make_engine

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine, revision)
        err.print(f"database at revision {migrate.current_revision(engine)}")
    except Exception as exc:
        err.print(f"[red]error:[/red] could not upgrade the database: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the newest one this version knows."""
    from cipulse import migrate
    from cipulse.db import make_engine

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        typer.echo(f"current: {migrate.current_revision(engine)}")
        typer.echo(f"head:    {migrate.head_revision(engine)}")
    finally:
        engine.dispose()


REPO_RE = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


def _check_repo_name(name: str) -> str:
    import re

    if not re.match(REPO_RE, name):
        err.print(
            f"[red]error:[/red] {name!r} is not OWNER/NAME (for example octo-org/hello-world)"
        )
        raise typer.Exit(2)
    return name


def _database(settings: Settings):  # type: ignore[no-untyped-def]
    from cipulse import migrate
    from cipulse.db import Database

    db = Database(settings.resolved_database_url)
    try:
        if settings.auto_migrate:
            migrate.upgrade(db.engine)
    except Exception as exc:
        err.print(f"[red]error:[/red] cannot use the database: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    return db


@repo_app.command("add")
def repo_add(
    name: Annotated[str, typer.Argument(help="OWNER/NAME")],
    branch: Annotated[
        list[str] | None,
        typer.Option("--branch", "-b", help="Only this branch (repeatable); default: all."),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Ask GitHub that the repository exists and the token sees it.")
    ] = True,
) -> None:
    """Track a repository: it is synced on schedule and by `cipulse sync`."""
    import asyncio

    from cipulse.github import errors
    from cipulse.sync import repository
    from cipulse.sync.tasks import SyncCoordinator

    _check_repo_name(name)
    settings = _settings()
    db = _database(settings)
    if check and settings.github_token is not None:

        async def exists() -> str:
            coordinator = SyncCoordinator(db=db, settings=settings)
            try:
                page = await coordinator.client().get(f"/repos/{name}")
                return str(page.data.get("full_name") or name)
            finally:
                await coordinator.aclose()

        try:
            name = asyncio.run(exists())
        except errors.NotFound:
            err.print(
                f"[red]error:[/red] GitHub has no repository {name}, or the token cannot see it"
            )
            raise typer.Exit(1) from None
        except errors.GitHubError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    with db.write() as uow:
        repository.track_repo(uow.session, name, branch or [])
    which = ", ".join(branch) if branch else "all branches"
    out.print(f"tracking {name} ({which}); run `cipulse sync {name}` to fetch its runs now")
    db.dispose()


@repo_app.command("list")
def repo_list() -> None:
    """Show every known repository, its branches and its last sync."""
    from rich.table import Column, Table

    from cipulse.sync import repository

    settings = _settings()
    db = _database(settings)
    with db.read() as session:
        rows = repository.status_rows(session)
        if not rows:
            out.print("no repositories yet: `cipulse repo add OWNER/NAME`")
        table = Table("branches", "tracked", "runs", "last sync", "last error")
        table.columns.insert(0, Column("repository", no_wrap=True))
        for repo, st, count in rows:
            last = (
                st.last_success_at.strftime("%Y-%m-%d %H:%M UTC")
                if st and st.last_success_at
                else "never"
            )
            table.add_row(
                repo.full_name,
                ", ".join(repo.branches or []) or "all",
                "yes" if repo.tracked else "no",
                str(count),
                last,
                (st.last_error or "") if st else "",
            )
        if rows:
            out.print(table)
    db.dispose()


@repo_app.command("remove")
def repo_remove(
    name: Annotated[str, typer.Argument(help="OWNER/NAME")],
    forget: Annotated[
        bool, typer.Option(help="Also delete its stored runs, jobs and sync state.")
    ] = False,
) -> None:
    """Stop tracking a repository (its data stays unless --forget)."""
    from cipulse.sync import repository

    _check_repo_name(name)
    settings = _settings()
    db = _database(settings)
    with db.write() as uow:
        found = repository.untrack_repo(uow.session, name, forget=forget)
    db.dispose()
    if not found:
        err.print(f"[red]error:[/red] {name} is not a known repository (see `cipulse repo list`)")
        raise typer.Exit(1)
    out.print(f"{'forgot' if forget else 'stopped tracking'} {name}")


@app.command()
def sync(
    name: Annotated[
        str | None, typer.Argument(help="OWNER/NAME; default: every tracked one.")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(min=1, max=400, help="Re-read the last N days (default: since last sync)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many runs, newest first.")
    ] = None,
) -> None:
    """Fetch runs, attempts, jobs and steps from GitHub now."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cipulse.sync import repository
    from cipulse.sync.tasks import SyncCoordinator

    settings = _settings()
    if settings.github_token is None:
        err.print(
            "[red]error:[/red] no GitHub token: set CIPULSE_GITHUB_TOKEN (or GITHUB_TOKEN) to a "
            "token that can read Actions"
        )
        raise typer.Exit(1)
    db = _database(settings)
    if name is not None:
        _check_repo_name(name)
        names = [name]
    else:
        with db.read() as session:
            names = [r.full_name for r in repository.tracked_repos(session)]
        if not names:
            err.print("[red]error:[/red] no repository is tracked: `cipulse repo add OWNER/NAME`")
            raise typer.Exit(1)

    async def run_all() -> int:
        coordinator = SyncCoordinator(db=db, settings=settings)
        failures = 0
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        try:
            with Progress(*columns, console=err, transient=True) as bar:
                for repo in names:
                    runs = bar.add_task(f"{repo} runs", total=None)
                    jobs = bar.add_task(f"{repo} jobs", total=None)

                    def report(
                        kind: str, done: int, total: int | None, runs: Any = runs, jobs: Any = jobs
                    ) -> None:
                        bar.update(runs if kind == "runs" else jobs, completed=done, total=total)

                    result = await coordinator.sync(repo, days=days, limit=limit, progress=report)
                    bar.remove_task(runs)
                    bar.remove_task(jobs)
                    line = result.describe()
                    if result.error:
                        failures += 1
                        err.print(f"[red]error:[/red] {result.repo}: {result.error}")
                    out.print(line, highlight=False)
        finally:
            await coordinator.aclose()
        return failures

    failures = asyncio.run(run_all())
    db.dispose()
    if failures:
        raise typer.Exit(1)


@webhooks_app.command("list")
def webhooks_list(
    state: Annotated[
        str | None, typer.Option(help="Only pending, processed, ignored or failed ones.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """The newest deliveries and what became of them."""
    from rich.table import Table

    from cipulse.webhooks import repository as inbox

    if state not in (None, "pending", "processed", "ignored", "failed"):
        err.print("[red]error:[/red] --state must be pending, processed, ignored or failed")
        raise typer.Exit(2)
    settings = _settings()
    db = _database(settings)
    with db.read() as session:
        rows = inbox.recent(session, limit=limit, state=state)
        if not rows:
            out.print("no deliveries")
        else:
            table = Table(
                "id", "event", "action", "repository", "state", "tries", "received", "last error"
            )
            for d in rows:
                table.add_row(
                    str(d.id),
                    d.event,
                    d.action or "",
                    d.repository or "",
                    d.state,
                    str(d.attempts),
                    f"{d.received_at:%Y-%m-%d %H:%M:%S}",
                    d.last_error or "",
                )
            out.print(table)
    db.dispose()


@webhooks_app.command("replay")
def webhooks_replay(delivery_id: Annotated[int, typer.Argument(help="The delivery's id.")]) -> None:
    """Process a stored delivery again (a running server picks it up within seconds)."""
    from cipulse.models import utcnow
    from cipulse.webhooks import repository as inbox

    settings = _settings()
    db = _database(settings)
    with db.write() as uow:
        found = inbox.replay(uow.session, delivery_id, now=utcnow())
    db.dispose()
    if not found:
        err.print(f"[red]error:[/red] no delivery {delivery_id} (see `cipulse webhooks list`)")
        raise typer.Exit(1)
    out.print(f"delivery {delivery_id} queued again")


def main() -> None:
    app()
