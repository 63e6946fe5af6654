"""Check JSON bodies against the response schemas of GitHub's OpenAPI description
(``shared/fixtures/real/rest/openapi-actions-subset.json``) with ``jsonschema``.

OpenAPI 3.0 schemas are close to JSON Schema draft 4 but not the same: ``nullable: true`` is
turned into a ``null`` type (and a ``None`` in an ``enum``), extension keys (``x-...``) are dropped,
and ``$ref``s resolve inside the same document. ``date-time`` and ``uri`` formats are checked.

The strict check is what the fake's own answers must pass. Real recorded answers are older and
looser than today's description; ``relax_for_recorded_data`` is the one place that loosens the
check for them, and says exactly what and why.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Any
from urllib.parse import urlparse

from jsonschema import Draft4Validator, FormatChecker  # type: ignore[import-untyped]

from tests.fakegithub.bodies import REST_FIXTURES

SPEC_PATH = REST_FIXTURES / "openapi-actions-subset.json"
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

Json = dict[str, Any]

# (schema name, required field) pairs that real recorded bodies lack. Each is documented where
# ``relax_for_recorded_data`` removes it.
Relaxation = tuple[str, str]


@cache
def spec() -> Json:
    document: Json = json.loads(SPEC_PATH.read_text())
    return document


def _convert(node: Any) -> Any:
    """One OpenAPI 3.0 schema object -> JSON Schema (draft 4)."""
    if not isinstance(node, dict):
        return node
    out: Json = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("nullable", "example", "examples", "discriminator"):
            continue
        if key == "properties":
            out[key] = {name: _convert(schema) for name, schema in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _convert(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_convert(schema) for schema in value]
        else:
            out[key] = copy.deepcopy(value)
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:  # a $ref or allOf: OpenAPI 3.0 ignores nullable there, but be generous
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _components(relaxations: frozenset[Relaxation]) -> Json:
    schemas = {name: _convert(s) for name, s in spec()["components"]["schemas"].items()}
    return {"schemas": relax_for_recorded_data(schemas, relaxations)}


def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(DATE_TIME.match(value))


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlparse(value).scheme)


def _format_checker() -> FormatChecker:
    """Only the two formats these schemas use, checked without optional packages."""
    checker = FormatChecker(formats=())
    checker.checkers["date-time"] = (_is_date_time, ())
    checker.checkers["uri"] = (_is_uri, ())
    return checker


def response_schema(path: str, method: str = "get", status: str = "200") -> Json:
    """The OpenAPI response schema of an operation (still OpenAPI, not converted)."""
    response = spec()["paths"][path][method]["responses"][status]
    schema: Json = response["content"]["application/json"]["schema"]
    return schema


@cache
def _validator(
    path: str | None,
    component: str | None,
    method: str,
    status: str,
    relaxations: frozenset[Relaxation],
) -> Draft4Validator:
    target = (
        response_schema(path, method, status)
        if path is not None
        else {"$ref": f"#/components/schemas/{component}"}
    )
    root = {**_convert(target), "components": _components(relaxations)}
    return Draft4Validator(root, format_checker=_format_checker())


def errors(
    body: Any,
    *,
    path: str | None = None,
    component: str | None = None,
    method: str = "get",
    status: str = "200",
    relaxed: bool | frozenset[Relaxation] = False,
) -> list[str]:
    """Every way ``body`` breaks the schema of an operation's response (``path``, ``method``,
    ``status``) or of a named component; ``[]`` when it validates. ``relaxed=True`` applies
    all of ``RECORDED_DATA_RELAXATIONS``; a set applies only those."""
    if (path is None) == (component is None):
        raise ValueError("give path or component")
    if isinstance(relaxed, bool):
        relaxed = frozenset(RECORDED_DATA_RELAXATIONS) if relaxed else frozenset()
    validator = _validator(path, component, method, status, relaxed)
    found = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]


def relaxations_needed(body: Any, **where: Any) -> set[Relaxation]:
    """Which of ``RECORDED_DATA_RELAXATIONS`` make ``body`` pass: each one whose removal
    changes the strict errors (found by checking with all relaxations but that one)."""
    every = frozenset(RECORDED_DATA_RELAXATIONS)
    return {r for r in every if errors(body, relaxed=every - {r}, **where)}


# The relaxations, one by one. Nothing else is loosened: types, enums, formats and every other
# required field are checked as GitHub describes them today.
RECORDED_DATA_RELAXATIONS: dict[Relaxation, str] = {
    # Jobs: added to the API after the 2022 recordings (octokit.rb's and pytorch's jobs lists);
    # GitHub's own ``job`` and ``job-paginated`` examples lack ``created_at`` too.
    ("job", "workflow_name"): "added to jobs after the 2022 recordings",
    ("job", "head_branch"): "added to jobs after the 2022 recordings",
    ("job", "created_at"): "added to jobs after 2022; GitHub's own job examples lack it",
    # ``GET /rate_limit`` in 2013 answered only ``{"rate": {limit, remaining, reset}}``.
    ("rate-limit-overview", "resources"): "the 2013 rate_limit answer has only rate",
    ("rate-limit", "used"): "the 2013 rate_limit answer has no used",
    # The 2017 installation repositories answer predates node ids (GraphQL), archiving,
    # disabling, the projects flag and the license object.
    ("repository", "node_id"): "2017 repositories have no node_id",
    ("simple-user", "node_id"): "2017 owners have no node_id",
    ("repository", "archived"): "2017 repositories have no archived",
    ("repository", "disabled"): "2017 repositories have no disabled",
    ("repository", "has_projects"): "2017 repositories have no has_projects",
    ("repository", "license"): "2017 repositories have no license",
}


def relax_for_recorded_data(
    schemas: Json, relaxations: frozenset[Relaxation] = frozenset(RECORDED_DATA_RELAXATIONS)
) -> Json:
    """Loosen converted component schemas for real recorded answers, which are older than
    today's description: drop the ``required`` entries of ``RECORDED_DATA_RELAXATIONS`` (see
    the comment on each; ``relaxations`` picks a subset), and nothing else."""
    for schema_name, field in relaxations:
        target = schemas[schema_name]
        target["required"] = [name for name in target.get("required", []) if name != field]
    return schemas


ACTIONS = "/repos/{owner}/{repo}/actions"
RUNS_LIST: Json = {"path": f"{ACTIONS}/runs"}
RUN: Json = {"path": f"{ACTIONS}/runs/{{run_id}}"}
RUN_JOBS: Json = {"path": f"{ACTIONS}/runs/{{run_id}}/jobs"}
ATTEMPT_JOBS: Json = {"path": f"{ACTIONS}/runs/{{run_id}}/attempts/{{attempt_number}}/jobs"}
JOB: Json = {"path": f"{ACTIONS}/jobs/{{job_id}}"}
# The repository-wide artifacts list is not in the subset; it has the run's list shape.
ARTIFACTS: Json = {"path": f"{ACTIONS}/runs/{{run_id}}/artifacts"}
WORKFLOWS: Json = {"path": f"{ACTIONS}/workflows"}
RATE_LIMIT: Json = {"path": "/rate_limit"}
INSTALLATION_REPOS: Json = {"path": "/installation/repositories"}
TOKEN: Json = {
    "path": "/app/installations/{installation_id}/access_tokens",
    "method": "post",
    "status": "201",
}
NONE: set[tuple[str, str]] = set()
NEWER_JOB_FIELDS = {("job", "workflow_name"), ("job", "head_branch"), ("job", "created_at")}
OLD_RATE_LIMIT = {("rate-limit-overview", "resources"), ("rate-limit", "used")}
REPOS_2017 = {
    ("repository", "node_id"),
    ("simple-user", "node_id"),
    ("repository", "archived"),
    ("repository", "disabled"),
    ("repository", "has_projects"),
    ("repository", "license"),
}
ORB = "octokit-rb-decoded/"
EXAMPLES = "openapi-examples/"
# Which operation each real body answers, and the relaxations it needs (a test checks both).
# Files are relative to REST_FIXTURES.
RECORDED_BODIES: dict[str, tuple[dict[str, Any], set[tuple[str, str]]]] = {
    f"{ORB}list-workflow-runs-for-repo.3-pages.1.body.json": (RUNS_LIST, NONE),
    f"{ORB}list-workflow-runs-for-repo.3-pages.2.body.json": (RUNS_LIST, NONE),
    f"{ORB}list-workflow-runs-for-repo.3-pages.3.body.json": (RUNS_LIST, NONE),
    f"{ORB}list-workflow-runs-for-repo.empty.body.json": (RUNS_LIST, NONE),
    f"{ORB}list-jobs-for-run-attempt.2-pages.1.body.json": (ATTEMPT_JOBS, NEWER_JOB_FIELDS),
    f"{ORB}list-jobs-for-run-attempt.2-pages.2.body.json": (ATTEMPT_JOBS, NEWER_JOB_FIELDS),
    f"{ORB}list-artifacts-for-repo.3-pages.1.body.json": (ARTIFACTS, NONE),
    f"{ORB}list-artifacts-for-repo.3-pages.2.body.json": (ARTIFACTS, NONE),
    f"{ORB}list-artifacts-for-repo.3-pages.3.body.json": (ARTIFACTS, NONE),
    f"{ORB}list-run-artifacts.body.json": (ARTIFACTS, NONE),
    f"{ORB}get-artifact.body.json": ({"component": "artifact"}, NONE),
    f"{ORB}list-workflows.2-pages.1.body.json": (WORKFLOWS, NONE),
    f"{ORB}list-workflows.2-pages.2.body.json": (WORKFLOWS, NONE),
    f"{ORB}rate-limit.2013.body.json": (RATE_LIMIT, OLD_RATE_LIMIT),
    f"{ORB}installation-repositories.single.2.body.json": (INSTALLATION_REPOS, REPOS_2017),
    f"{ORB}create-installation-access-token.body.json": (TOKEN, NONE),
    f"{ORB}installation-repositories.single.1.body.json": (TOKEN, NONE),
    f"{ORB}installation-repositories.2-pages.1.body.json": (TOKEN, NONE),
    "pytorch-test-infra/list-jobs-for-run.pytorch-pytorch.json": (RUN_JOBS, NEWER_JOB_FIELDS),
    f"{EXAMPLES}workflow-run.json": (RUN, NONE),
    f"{EXAMPLES}workflow-run-paginated.json": (RUNS_LIST, NONE),
    f"{EXAMPLES}job.json": (JOB, {("job", "created_at")}),
    f"{EXAMPLES}job-paginated.json": (RUN_JOBS, {("job", "created_at")}),
    f"{EXAMPLES}workflow-paginated.json": (WORKFLOWS, NONE),
    f"{EXAMPLES}artifact-paginated.json": (ARTIFACTS, NONE),
    f"{EXAMPLES}rate-limit-overview.json": (RATE_LIMIT, NONE),
    f"{EXAMPLES}repository-paginated-2.json": (INSTALLATION_REPOS, NONE),
    f"{EXAMPLES}installation-token.json": (TOKEN, NONE),
}
# Not real answers, so not checked: octokit.rb's installation-repositories pagination bodies
# were hand-trimmed upstream to {"total_count": 2, "repositories": [{"id": 1}]}.
HAND_TRIMMED_BODIES = {
    "octokit-rb-decoded/installation-repositories.2-pages.2.body.json",
    "octokit-rb-decoded/installation-repositories.2-pages.3.body.json",
}
