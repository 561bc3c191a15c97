"""Reading plans: the task-orchestrator manifest and the task graph into one Plan, all or nothing, with
every problem named by file, JSON path and what was expected; and composing a task's prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tsk.plans import spec
from tsk.plans.forge import Issue
from tsk.plans.jsonshape import PlanError
from tsk.plans.model import PlanTask
from tsk.plans.prompt import compose

DATA = Path(__file__).parent / "data" / "plans"
MANIFEST: dict[str, Any] = json.loads((DATA / "manifest.json").read_text())
GRAPH: dict[str, Any] = json.loads((DATA / "graph.json").read_text())


def _write(tmp_path: Path, doc: object, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


def _problems(tmp_path: Path, doc: object) -> list[str]:
    with pytest.raises(PlanError) as err:
        spec.load(_write(tmp_path, doc))
    return [f"{p.path}: {p.message}" for p in err.value.problems]


def test_a_manifest_becomes_a_plan_with_phases_as_gates(tmp_path: Path) -> None:
    plan = spec.load(_write(tmp_path, MANIFEST))
    assert (plan.name, plan.format, plan.repo, plan.model) == ("shop", "manifest", "acme/shop", "gpt-5.2-codex")
    t1, t2, t3 = plan.tasks
    assert (t1.id, t1.title, t1.issue, t1.scope, t1.depends_on, t1.gate) == ("t1", "Add /orders", 12, ("src/api/**",),
                                                                            (), 0)
    assert t1.model == "gpt-5.2-codex" and t1.where == "$.phases[0].tasks[0]"
    assert (t2.validate, t2.agent, t2.model, t2.depends_on) == ("make docs && make linkcheck", "codex", "o4", ("t1",))
    assert (t3.gate, t3.prompt, t3.type, t3.scope) == (1, "Do exactly this.", "feat", ("/web/**",))
    assert [(g.label, g.name, g.tasks, g.barrier) for g in plan.gates] == [
        ("phase 1", "Phase 1: API", ("t1", "t2"), True), ("phase 2", "Phase 2", ("t3",), True)]


def test_a_task_graph_becomes_a_plan_with_waves_as_gates(tmp_path: Path) -> None:
    plan = spec.load(_write(tmp_path, GRAPH))
    assert plan.format == "graph"
    api = plan.task("api")
    assert (api.title, api.owner_role, api.acceptance, api.validate, api.description) == (
        "Add /orders", "backend", ("GET /orders lists orders", "it pages"), "pytest -q tests/api && ruff check src",
        "The orders API.")
    assert [plan.task(t).gate for t in ("api", "readme", "ui")] == [0, 0, 1]
    assert [(g.label, g.name, g.tasks, g.check) for g in plan.gates] == [
        ("wave 1", None, ("api", "readme"), None), ("wave 2", "front end", ("ui",), "npm test")]


def test_a_task_graph_without_waves_has_one_gate(tmp_path: Path) -> None:
    doc = {k: v for k, v in GRAPH.items() if k != "waves"}
    plan = spec.load(_write(tmp_path, doc))
    assert len(plan.gates) == 1 and {t.gate for t in plan.tasks} == {0}


def test_the_name_is_the_flag_else_the_project_else_the_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path, MANIFEST, "roadmap.json")
    assert spec.load(path, name="mine").name == "mine"
    assert spec.load(path).name == "shop"
    assert spec.load(_write(tmp_path, {k: v for k, v in MANIFEST.items() if k != "project"}, "roadmap.json")).name \
        == "roadmap"


def test_a_gate_may_be_no_barrier_or_a_check(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(GRAPH))
    doc["waves"] = [{"tasks": ["api"], "gate": False}, {"tasks": ["readme"], "gate": ["make a", "make b"]}, ["ui"]]
    plan = spec.load(_write(tmp_path, doc))
    assert [(g.barrier, g.check) for g in plan.gates] == [(False, None), (True, "make a && make b"), (True, None)]


def test_malformed_json_names_the_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"phases": [\n  {"tasks": []}\n  {"tasks": []}\n]}\n')
    with pytest.raises(PlanError) as err:
        spec.load(path)
    assert str(err.value).startswith(f"{path}: line 3, column 3: malformed JSON: Expecting ',' delimiter")
    assert err.value.exit_code == 2


def test_neither_format_is_said_plainly(tmp_path: Path) -> None:
    assert _problems(tmp_path, {"phase": []}) == [
        '$: expected `phases` (a task-orchestrator manifest) or `tasks` (a task graph) at the top level; '
        'did you mean "phases"?']
    assert _problems(tmp_path, [1]) == [
        "$: expected an object (a manifest with `phases` or a task graph with `tasks`), got a list"]


def test_every_problem_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    doc = {"project": "shop", "modle": "x", "phases": [
        {"name": "one", "tasks": [
            {"id": "t1", "issue": "12", "title": "A", "files": "src/**", "dependsOn": ["t3"]},
            {"id": "t1", "title": "B", "files": ["docs/", "!x"], "depends_on": ["t1"]},
            {"id": "t4", "dependsOn": [7]}]},
        {"name": "two", "tasks": [{"id": "t3", "title": "C", "dependsOn": ["t1"]}]}]}
    assert _problems(tmp_path, doc) == [
        '$.modle: unknown key "modle" in a manifest; did you mean "model"?',
        '$.phases[0].tasks[0].dependsOn[0]: task "t3" is in phase 2, later than this task\'s phase 1; '
        "a task may depend only on tasks of its own or an earlier one",
        '$.phases[0].tasks[0].files: expected a list of path globs (strings such as "src/api/**"), got string "src/**"',
        '$.phases[0].tasks[0].issue: expected a positive integer (an issue number), got string "12"',
        '$.phases[0].tasks[1].depends_on: unknown key "depends_on" in a task; did you mean "dependsOn"?',
        "$.phases[0].tasks[1].files[1]: `!x`: negated globs (`!`) are not supported in a write scope; "
        "list the paths it may write",
        '$.phases[0].tasks[1].id: duplicate task id "t1" (first at $.phases[0].tasks[0])',
        '$.phases[0].tasks[2]: a task is missing the key "title" (or give it a `prompt`)',
        "$.phases[0].tasks[2].dependsOn[0]: expected a non-empty string, got number 7",
    ]


def test_the_error_names_the_file_on_every_line(tmp_path: Path) -> None:
    path = _write(tmp_path, {"tasks": [{"id": "a", "name": "A", "depends_on": ["b"]}, {"name": "B"}]})
    with pytest.raises(PlanError) as err:
        spec.load(path)
    lines = str(err.value).splitlines()
    assert lines[:2] == [f'{path}: $.tasks[0].depends_on[0]: unknown task id "b"',
                         f'{path}: $.tasks[1]: a task is missing the key "id"']


def test_unknown_dependencies_suggest_the_id_meant(tmp_path: Path) -> None:
    doc = {"tasks": [{"id": "backend", "name": "A"}, {"id": "x", "name": "B", "depends_on": ["bakend"]}]}
    assert _problems(tmp_path, doc) == ['$.tasks[1].depends_on[0]: unknown task id "bakend"; did you mean "backend"?']


def test_a_dependency_cycle_is_printed_whole(tmp_path: Path) -> None:
    doc = {"tasks": [{"id": "a", "name": "A", "depends_on": ["c"]}, {"id": "b", "name": "B", "depends_on": ["a"]},
                     {"id": "c", "name": "C", "depends_on": ["b"]}, {"id": "d", "name": "D", "depends_on": ["d"]}]}
    assert _problems(tmp_path, doc) == ["$.tasks[0].depends_on: dependency cycle: a → c → b → a",
                                        "$.tasks[3].depends_on[0]: a task cannot depend on itself"]


def test_waves_must_place_every_task_exactly_once(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(GRAPH))
    doc["waves"] = [["api", "api"], {"tasks": ["uii"], "gate": 3}, []]
    assert _problems(tmp_path, doc) == [
        '$.tasks[1]: task "ui" is in no wave; add it to one of $.waves',
        '$.tasks[2]: task "readme" is in no wave; add it to one of $.waves',
        '$.waves[0][1]: task "api" is already in a wave at $.waves[0][0]; a task is in exactly one wave',
        "$.waves[1].gate: expected true, false or a command (a string or a list of strings), got number 3",
        '$.waves[1].tasks[0]: unknown task id "uii"; did you mean "ui"?',
        "$.waves[2]: the wave lists no task",
    ]


def test_a_graph_task_may_not_depend_on_a_later_wave(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(GRAPH))
    doc["tasks"][0]["depends_on"] = ["ui"]
    assert _problems(tmp_path, doc) == [
        '$.tasks[0].depends_on[0]: task "ui" is in wave 2, later than this task\'s wave 1; '
        "a task may depend only on tasks of its own or an earlier one"]


def test_a_key_given_twice_is_reported_where_it_is(tmp_path: Path) -> None:
    text = '{"tasks": [{"id": "a", "name": "A", "name": "B"}]}'
    assert _problems(tmp_path, text) == ["$.tasks[0].name: this key is given more than once in the object; keep one"]


def test_wrong_shapes_at_each_level(tmp_path: Path) -> None:
    assert _problems(tmp_path, {"phases": {}}) == ["$.phases: expected a list of phases, got an object"]
    assert _problems(tmp_path, {"phases": []}) == ["$.phases: the manifest has no phases; a plan needs at least one task"]
    assert _problems(tmp_path, {"phases": [[]]}) == ["$.phases[0]: expected a phase (an object), got a list"]
    assert _problems(tmp_path, {"phases": [{"tasks": "t"}]}) == ["$.phases[0].tasks: expected a list of tasks, got "
                                                                 'string "t"']
    assert _problems(tmp_path, {"tasks": [{"id": "", "name": "A", "write_scope": ["../x"]}], "repo": "nope"}) == [
        "$.repo: cannot read a GitHub repository from 'nope': expected `owner/repo` or a remote URL such as "
        "https://github.com/owner/repo.git or git@github.com:owner/repo.git",
        "$.tasks[0].id: expected a non-empty string",
        "$.tasks[0].write_scope[0]: `../x`: a write scope is a path inside the repository; `..` segments are not "
        "allowed",
    ]


def test_numbers_that_are_not_json_are_refused(tmp_path: Path) -> None:
    assert _problems(tmp_path, '{"tasks": [{"id": "a", "name": "A", "issue": NaN}]}') == [
        "$: malformed JSON: NaN is not a JSON number"]


def test_a_missing_or_unreadable_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read the plan"):
        spec.load(tmp_path / "nope.json")
    (tmp_path / "latin1.json").write_bytes(b'{"tasks": "\xe9"}')
    with pytest.raises(PlanError, match="not UTF-8"):
        spec.load(tmp_path / "latin1.json")


def test_a_prompt_alone_gives_the_title(tmp_path: Path) -> None:
    plan = spec.load(_write(tmp_path, {"tasks": [{"id": "a", "prompt": "\n# Fix the flaky test\nIt fails on CI."}]}))
    assert plan.task("a").title == "Fix the flaky test"


# ----- the prompt -----

def _task(**kw: Any) -> PlanTask:
    return PlanTask(**{"id": "t1", "title": "Add /orders", "where": "$.tasks[0]", **kw})


def test_a_prompt_is_used_verbatim() -> None:
    assert compose(_task(prompt="exactly  this\n", description="ignored", issue=3)) == "exactly  this\n"


def test_a_prompt_is_composed_from_the_fields_and_the_issue() -> None:
    task = _task(description="The orders API.", acceptance=("lists orders", "pages"), issue=12,
                 scope=("src/api/**",), validate="pytest -q")
    issue = Issue(number=12, title="Orders endpoint", body="We need GET /orders.\n")
    assert compose(task, issue) == (
        "# Add /orders\n\nThe orders API.\n\n## GitHub issue #12: Orders endpoint\n\nWe need GET /orders.\n\n"
        "## Acceptance criteria\n\n- [ ] lists orders\n- [ ] pages\n\n"
        "## Write scope\n\nChange only files that match `src/api/**`; other tasks are changing the rest.\n\n"
        "## Validation\n\nWhen you are done, this must pass: `pytest -q`\n")


def test_an_issue_that_could_not_be_fetched_is_named_by_number() -> None:
    assert compose(_task(issue=12)) == "# Add /orders\n\nThis task implements GitHub issue #12.\n"
    assert "#12" in compose(_task(issue=12), Issue(number=13, title="other", body="x"))
    assert "other" not in compose(_task(issue=12), Issue(number=13, title="other", body="x"))
