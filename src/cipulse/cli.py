"""The ``cipulse`` command."""

from __future__ import annotations

import logging
from typing import Annotated

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
    from cipulse.app import create_app
    from cipulse.simulator import tasks as demo_tasks

    _preflight(settings)

    jobs = []
    if demo:

        async def seed_then_tick(ctx):  # type: ignore[no-untyped-def]
            import asyncio

            created = await asyncio.to_thread(demo_tasks.seed_history, ctx)
            if created:
                logging.getLogger("cipulse.demo").info("seeded %d demo runs", created)
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


@app.command()
def demo(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Serve with a month of simulated history and a new simulated run every few seconds.

    Uses its own database (demo.db in the data dir) unless CIPULSE_DATABASE_URL is set, so demo
    data never mixes with real data.
    """
    base = _settings()
    overrides: dict[str, object] = {}
    if base.database_url is None:
        overrides["database_url"] = f"sqlite:///{base.data_dir / 'demo.db'}"
    settings = _settings(**overrides)
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


def main() -> None:
    app()
