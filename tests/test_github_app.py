"""GitHub App mode against the fake GitHub over real HTTP: the App's JWT, installation tokens
(bought once, shared, renewed before they run out), each repository synced with its own
installation's token, and installations discovered at start-up. SQLite and PostgreSQL where a
database is involved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from cipulse.db import Database
from cipulse.github import errors
from cipulse.github.app import (
    JWT_REJECTED,
    RENEW_MARGIN_SECONDS,
    InstallationTokens,
    app_jwt,
)
from cipulse.models import Installation, Repository, WorkflowRun
from cipulse.settings import Settings
from cipulse.sync.tasks import Discovery, SyncCoordinator
from tests.fakegithub import FakeGitHub, Scenario, expected_job_stats
from tests.fakegithub import schema as openapi
from tests.fakegithub.apps import (
    EXPIRED,
    ISSUED_LATER,
    TOO_LONG,
    UNDECODABLE,
    app_key,
    jwt_problem,
)
from tests.test_sync import REPO, run_sync, stored_stats

APP_ID = 424242
OTHER = "someone/side-project"
T = TypeVar("T")


@pytest.fixture
def scenario() -> Scenario:
    """hello-world in the octo-org installation; a user's repository in another one."""
    scenario = Scenario.generate(seed=7, runs=40, jobs_per_run=5, days=20)
    other = scenario.add_repo(OTHER)
    scenario.add_run(scenario.add_workflow(other, "CI"), jobs=["build", ("test", "failure")])
    scenario.add_installation("octo-org", repos=[REPO], id=1001)
    scenario.add_installation("someone", repos=[other], account_type="User", id=1002)
    return scenario


@pytest.fixture
def gh(scenario: Scenario) -> Iterator[FakeGitHub]:
    with FakeGitHub(scenario, app_id=APP_ID) as fake:
        yield fake


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.private-key.pem"
    path.write_bytes(app_key().private_pem)
    return path


def tokens_for(gh: FakeGitHub, **kwargs: Any) -> InstallationTokens:
    kwargs.setdefault("private_key_pem", app_key().private_pem)
    kwargs.setdefault("app_id", APP_ID)
    return InstallationTokens(api_url=gh.api_url, **kwargs)


def using(tokens: InstallationTokens, work: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await work()
        finally:
            await tokens.aclose()

    return asyncio.run(go())


def app_settings(make_settings, gh: FakeGitHub, key_file: Path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(  # type: ignore[no-any-return]
        github_app_id=APP_ID,
        github_app_private_key_file=key_file,
        github_api_url=gh.api_url,
        poll_interval_minutes=0,
        reconcile_cron="",
    )


def with_coordinator(settings: Settings, work: Callable[[SyncCoordinator], Awaitable[T]]) -> T:
    async def go() -> T:
        db = Database(settings.resolved_database_url)
        coordinator = SyncCoordinator(db=db, settings=settings)
        try:
            return await work(coordinator)
        finally:
            await coordinator.aclose()
            db.dispose()

    return asyncio.run(go())


def discover(settings: Settings) -> Discovery:
    return with_coordinator(settings, lambda c: c.discover_installations())


def repo_rows(db_url: str) -> dict[str, tuple[bool, int | None]]:
    db = Database(db_url)
    with db.read() as session:
        rows = {
            r.full_name: (r.tracked, r.installation_id) for r in session.scalars(select(Repository))
        }
    db.dispose()
    return rows


def installation_rows(db_url: str) -> dict[int, tuple[str | None, str | None, bool]]:
    db = Database(db_url)
    with db.read() as session:
        rows = {
            i.github_id: (i.account_login, i.account_type, i.deleted_at is not None)
            for i in session.scalars(select(Installation))
        }
    db.dispose()
    return rows


def suspended(db_url: str) -> set[int]:
    db = Database(db_url)
    with db.read() as session:
        rows = {i.github_id for i in session.scalars(select(Installation)) if i.suspended_at}
    db.dispose()
    return rows


def count_runs(db_url: str) -> int:
    db = Database(db_url)
    with db.read() as session:
        count = session.scalar(select(func.count()).select_from(WorkflowRun)) or 0
    db.dispose()
    return count


# --------------------------------------------------------------------------------------------
# the JWT


def test_jwt_claims_are_what_github_asks_for() -> None:
    now = 1_790_000_000.9
    token = app_jwt(APP_ID, app_key().private_pem, now)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token, app_key().public_pem, algorithms=["RS256"], options={"verify_exp": False}
    )
    assert claims["iat"] == int(now) - 60  # a minute back, for clock drift
    assert claims["exp"] <= claims["iat"] + 600  # ten minutes at most
    assert claims["exp"] > int(now)
    assert claims["iss"] == str(APP_ID)
    assert jwt_problem(token, public_key_pem=app_key().public_pem, app_id=APP_ID, now=now) is None


def test_the_fake_refuses_jwts_github_would_refuse() -> None:
    now = time.time()
    public = app_key().public_pem

    def problem(token: str, at: float = now) -> str | None:
        return jwt_problem(token, public_key_pem=public, app_id=APP_ID, now=at)

    def signed(**claims: Any) -> str:
        return jwt.encode(claims, app_key().private_pem, algorithm="RS256")

    good = app_jwt(APP_ID, app_key().private_pem, now)
    assert problem(good) is None
    assert problem(good, now + 541) == EXPIRED
    assert problem(app_jwt(APP_ID, app_key().private_pem, now + 121)) == ISSUED_LATER
    assert problem(signed(iat=int(now) - 60, exp=int(now) + 600, iss=str(APP_ID))) == TOO_LONG
    assert problem(app_jwt(APP_ID + 1, app_key().private_pem, now)) == UNDECODABLE
    assert problem(app_jwt(APP_ID, app_key("other").private_pem, now)) == UNDECODABLE
    assert problem("not.a.jwt") == UNDECODABLE


# --------------------------------------------------------------------------------------------
# installation tokens


def test_a_token_is_bought_once_and_reused(gh: FakeGitHub) -> None:
    tokens = tokens_for(gh)

    async def work() -> list[str]:
        return [await tokens.token(1001) for _ in range(3)]

    bought = using(tokens, work)
    assert len(set(bought)) == 1 and bought[0].startswith("ghs_")
    assert gh.stats.token_purchases == 1 == tokens.purchases
    cached = tokens.cached(1001)
    assert cached is not None and bought[0] not in repr(cached)  # never printed
    assert 3590 < cached.expires_at.timestamp() - time.time() <= 3600
    assert cached.permissions == {"actions": "read", "metadata": "read"}


def test_a_token_is_renewed_when_less_than_the_margin_remains(scenario: Scenario) -> None:
    clock = [time.time()]
    lifetime = RENEW_MARGIN_SECONDS + 30
    with FakeGitHub(scenario, app_id=APP_ID, installation_token_ttl=lifetime) as gh:
        tokens = tokens_for(gh, clock=lambda: clock[0])

        async def work() -> tuple[str, str, str]:
            first = await tokens.token(1001)
            clock[0] += 20  # 10 s more than the margin left: still good
            same = await tokens.token(1001)
            clock[0] += 20  # 10 s less than the margin left: renewed
            renewed = await tokens.token(1001)
            return first, same, renewed

        first, same, renewed = using(tokens, work)
    assert first == same != renewed
    assert gh.stats.token_purchases == 2


def test_while_github_cannot_sell_a_new_token_the_current_one_serves(scenario: Scenario) -> None:
    clock = [time.time()]
    lifetime = RENEW_MARGIN_SECONDS + 30
    with FakeGitHub(scenario, app_id=APP_ID, installation_token_ttl=lifetime) as gh:

        async def no_wait(seconds: float) -> None:
            pass

        tokens = tokens_for(gh, clock=lambda: clock[0], sleep=no_wait)

        async def work() -> tuple[str, str]:
            first = await tokens.token(1001)
            clock[0] += 40  # inside the renewal margin
            gh.fail_next(502, count=3, path_contains="/access_tokens")
            return first, await tokens.token(1001)

        first, during_outage = using(tokens, work)
    assert first == during_outage
    assert gh.stats.by_route["apps/create-installation-access-token"] == 4  # 1 + 3 tries


def test_a_suspended_installation_is_refused_with_githubs_reason(
    gh: FakeGitHub, scenario: Scenario
) -> None:
    with scenario.lock:
        scenario.installations[1001].suspended_at = scenario.now
    tokens = tokens_for(gh)
    with pytest.raises(errors.Forbidden, match="This installation has been suspended"):
        using(tokens, lambda: tokens.token(1001))


def test_concurrent_requests_for_one_installation_buy_one_token(scenario: Scenario) -> None:
    with FakeGitHub(scenario, app_id=APP_ID, latency_ms=100) as gh:
        tokens = tokens_for(gh)

        async def work() -> list[str]:
            return await asyncio.gather(*(tokens.token(i) for i in [1001] * 8 + [1002] * 4))

        bought = using(tokens, work)
    assert len(set(bought[:8])) == 1 and len(set(bought[8:])) == 1 and bought[0] != bought[8]
    assert gh.stats.by_route["apps/create-installation-access-token"] == 2


@pytest.mark.parametrize("wrong", ["key", "app id"])
def test_a_wrong_key_or_app_id_gets_a_clear_error(gh: FakeGitHub, wrong: str) -> None:
    if wrong == "key":
        tokens = tokens_for(gh, private_key_pem=app_key("other").private_pem)
    else:
        tokens = tokens_for(gh, app_id=APP_ID + 1)
    with pytest.raises(errors.BadCredentials) as caught:
        using(tokens, lambda: tokens.token(1001))
    message = str(caught.value)
    assert message.startswith(JWT_REJECTED)
    assert "ghs_" not in message and "eyJ" not in message  # no token, no JWT
    assert gh.stats.token_purchases == 0 and gh.stats.auth_failures == 1


def test_a_key_that_is_no_key_is_named(gh: FakeGitHub) -> None:
    tokens = tokens_for(gh, private_key_pem=b"-----BEGIN NONSENSE-----\n")
    with pytest.raises(errors.GitHubError, match="CIPULSE_GITHUB_APP_PRIVATE_KEY_FILE"):
        using(tokens, lambda: tokens.token(1001))
    assert gh.stats.requests == 0


def test_an_installation_that_is_gone_is_404(gh: FakeGitHub) -> None:
    tokens = tokens_for(gh)
    with pytest.raises(errors.NotFound, match="installation 999 "):
        using(tokens, lambda: tokens.token(999))


def test_an_installation_token_sees_only_its_installations_repositories(
    gh: FakeGitHub, scenario: Scenario
) -> None:
    token = gh.installation_token(1001)
    with httpx.Client(base_url=gh.api_url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get(f"/repos/{REPO}/actions/runs").status_code == 200
        other = scenario.repo_named(OTHER)
        assert other is not None
        assert http.get(f"/repos/{OTHER}/actions/runs").status_code == 404
        assert http.get(f"/repositories/{other.id}").status_code == 404
        listed = http.get("/installation/repositories").json()
        assert http.get("/app/installations").status_code == 401  # the App's JWT only
    assert [r["full_name"] for r in listed["repositories"]] == [REPO]
    assert openapi.errors(listed, path="/installation/repositories") == []
    with httpx.Client(base_url=gh.api_url, headers={"Authorization": f"Bearer {gh.token}"}) as pat:
        refused = pat.get("/installation/repositories")
    assert refused.status_code == 403 and "installation access token" in refused.json()["message"]
    gh.expire_installation_tokens(1001)
    expired = httpx.get(f"{gh.api_url}/repos/{REPO}", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401


def test_listings_follow_every_page(gh: FakeGitHub, scenario: Scenario) -> None:
    scenario.installations[1001].repo_ids.append(scenario.add_repo("octo-org/second").id)
    tokens = tokens_for(gh, per_page=1)

    async def work() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return await tokens.list_installations(), await tokens.installation_repositories(1001)

    installations, repos = using(tokens, work)
    assert [(i["id"], i["account"]["login"], i["account"]["type"]) for i in installations] == [
        (1001, "octo-org", "Organization"),
        (1002, "someone", "User"),
    ]
    assert all(i["app_id"] == APP_ID for i in installations)
    assert [r["full_name"] for r in repos] == [REPO, "octo-org/second"]
    assert gh.stats.by_route["apps/list-installations"] == 2
    assert gh.stats.by_route["apps/list-repos-accessible-to-installation"] == 2


def test_the_token_answer_matches_githubs_description(gh: FakeGitHub) -> None:
    jwt_now = app_jwt(APP_ID, app_key().private_pem, time.time())
    answer = httpx.post(
        f"{gh.api_url}/app/installations/1001/access_tokens",
        headers={"Authorization": f"Bearer {jwt_now}"},
    )
    assert answer.status_code == 201
    where = {"path": "/app/installations/{installation_id}/access_tokens", "method": "post"}
    assert openapi.errors(answer.json(), status="201", **where) == []
    assert answer.json()["repository_selection"] == "selected"


# --------------------------------------------------------------------------------------------
# the coordinator in App mode (SQLite and PostgreSQL)


def test_discovery_tracks_every_installations_repositories(
    make_settings, gh: FakeGitHub, scenario: Scenario, key_file: Path, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    settings = app_settings(make_settings, gh, key_file)
    found = discover(settings)
    assert (found.installations, found.tracked, found.untracked) == (2, sorted([REPO, OTHER]), [])
    assert repo_rows(db_url) == {REPO: (True, 1001), OTHER: (True, 1002)}
    assert installation_rows(db_url) == {
        1001: ("octo-org", "Organization", False),
        1002: ("someone", "User", False),
    }

    # While cipulse was down: a repository added to octo-org, the user uninstalled the App.
    added = scenario.add_repo("octo-org/new-service")
    scenario.installations[1001].repo_ids.append(added.id)
    del scenario.installations[1002]
    again = discover(settings)
    assert again.tracked == sorted([REPO, "octo-org/new-service"])
    assert again.untracked == [OTHER]
    assert repo_rows(db_url) == {
        REPO: (True, 1001),
        "octo-org/new-service": (True, 1001),
        OTHER: (False, 1002),
    }
    assert installation_rows(db_url)[1002] == ("someone", "User", True)

    # Suspended: no token can be bought, so its repositories are left as they are.
    with scenario.lock:
        scenario.installations[1001].suspended_at = scenario.now
        scenario.installations[1001].repo_ids.remove(added.id)
    third = discover(settings)
    assert (third.tracked, third.untracked, third.problems) == ([], [], [])
    assert repo_rows(db_url)["octo-org/new-service"] == (True, 1001)
    assert suspended(db_url) == {1001}


def test_app_mode_sync_matches_token_mode(
    make_settings, gh: FakeGitHub, scenario: Scenario, key_file: Path, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    settings = app_settings(make_settings, gh, key_file)
    discover(settings)
    gh.reset_stats()

    async def sync_both(coordinator: SyncCoordinator) -> list[Any]:
        first = await coordinator.sync(REPO)
        gh.expire_installation_tokens()  # GitHub ends them early: a new one is bought
        return [first, await coordinator.sync(OTHER), await coordinator.sync(REPO)]

    results = with_coordinator(settings, sync_both)
    assert [r.error for r in results] == [None, None, None]
    for branch in (None, "main"):
        assert stored_stats(db_url, branch) == expected_job_stats(scenario, REPO, branch=branch)
    assert gh.stats.token_purchases == 3  # octo-org, then octo-org again and the user's
    assert gh.rate_limit_remaining == 5000  # the personal token's limit was never touched
    assert gh.stats.auth_failures == 1  # the expired token, once; then the new one


def test_a_repository_outside_every_installation_is_refused_and_nothing_stored(
    make_settings, gh: FakeGitHub, key_file: Path, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    settings = app_settings(make_settings, gh, key_file)
    result = run_sync(settings, REPO)
    assert result.error == (
        f"{REPO} is not in any installation of the GitHub App: install the App on it"
    )
    assert repo_rows(db_url) == {} and gh.stats.requests == 0


def test_a_wrong_key_fails_the_sync_clearly_and_stores_no_run(
    make_settings, gh: FakeGitHub, tmp_path: Path, key_file: Path, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    discover(app_settings(make_settings, gh, key_file))
    gh.reset_stats()
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(app_key("other").private_pem)
    result = run_sync(app_settings(make_settings, gh, wrong), REPO)
    assert result.error is not None and result.error.startswith(JWT_REJECTED)
    assert count_runs(db_url) == 0
    assert gh.stats.token_purchases == 0 and gh.stats.auth_failures == 1
