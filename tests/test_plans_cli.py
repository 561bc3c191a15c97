"""`tsk plan apply` refusing bad plans before anything is queued, the dry run, scopes on `tsk add`, and
what `tsk list` says a plan's tasks wait for. No engine: nothing here runs a sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import PROJECT, GitHubServer, git, make_repo, run_tsk

PLAN = {"project": "shop", "phases": [
    {"name": "one", "tasks": [
        {"id": "api", "title": "Add api", "files": ["src/api/**"], "dependsOn": [], "prompt": "true"},
        {"id": "api2", "title": "More api", "files": ["src/api/v2/**"], "dependsOn": [], "prompt": "true"},
        {"id": "docs", "title": "Docs", "files": ["docs/**"], "dependsOn": [], "prompt": "true"}]},
    {"name": "two", "tasks": [
        {"id": "both", "title": "Both", "dependsOn": ["api", "docs"], "prompt": "true"}]}]}


def _repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "shop", {**PROJECT, ".tsk/tsk.toml": 'stack = "default"\nagent = "exec"\n'})


def _write(tmp_path: Path, doc: object, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def _listed(repo: Path) -> list[dict[str, object]]:
    res = run_tsk("list", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    rows: list[dict[str, object]] = json.loads(res.stdout)
    return rows


def test_a_bad_plan_is_refused_with_the_json_path_of_each_problem_and_nothing_is_queued(
        tmp_path: Path, tsk_home: Path) -> None:
    repo = _repo(tmp_path)
    bad: dict[str, object] = json.loads(json.dumps(PLAN))
    tasks = bad["phases"][0]["tasks"]  # type: ignore[index]
    tasks[1]["dependsOn"] = ["apj"]  # unknown
    tasks[2]["files"] = ["../outside"]  # not in the repo
    res = run_tsk("plan", "apply", str(_write(tmp_path, bad)), cwd=repo)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "$.phases[0].tasks[1].dependsOn[0]" in res.stderr and "unknown task id \"apj\"" in res.stderr
    assert "$.phases[0].tasks[2].files[0]" in res.stderr
    malformed = run_tsk("plan", "apply", str(_write(tmp_path, '{"phases": [', "broken.json")), cwd=repo)
    assert malformed.returncode == 2 and "malformed JSON" in malformed.stderr and "line 1" in malformed.stderr
    cyclic: dict[str, object] = json.loads(json.dumps(PLAN))
    cyclic["phases"][0]["tasks"][0]["dependsOn"] = ["api2"]  # type: ignore[index]
    cyclic["phases"][0]["tasks"][1]["dependsOn"] = ["api"]  # type: ignore[index]
    loop = run_tsk("plan", "apply", str(_write(tmp_path, cyclic, "cycle.json")), cwd=repo)
    assert loop.returncode == 2 and "cycle" in loop.stderr and "api" in loop.stderr, loop.stderr
    dup: dict[str, object] = json.loads(json.dumps(PLAN))
    dup["phases"][1]["tasks"][0]["id"] = "api"  # type: ignore[index]
    twice = run_tsk("plan", "apply", str(_write(tmp_path, dup, "dup.json")), cwd=repo)
    assert twice.returncode == 2 and "api" in twice.stderr
    assert _listed(repo) == []  # all or nothing: none of these queued a task
    assert run_tsk("plan", "list", cwd=repo).stdout.startswith("no plans yet")


def test_a_gate_command_is_refused_because_it_would_run_outside_any_sandbox(tmp_path: Path, tsk_home: Path) -> None:
    repo = _repo(tmp_path)
    graph = {"tasks": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
             "waves": [{"tasks": ["a"], "gate": "make test"}, ["b"]]}
    res = run_tsk("plan", "apply", str(_write(tmp_path, graph)), cwd=repo)
    assert res.returncode == 2 and "$.waves[0].gate" in res.stderr and "validation" in res.stderr
    assert _listed(repo) == []


def test_the_dry_run_shows_what_runs_in_parallel_what_waits_and_why(tmp_path: Path, tsk_home: Path) -> None:
    repo = _repo(tmp_path)
    res = run_tsk("plan", "apply", str(_write(tmp_path, PLAN)), "--dry-run", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    schedule = json.loads(res.stdout)["schedule"]
    assert schedule["levels"] == [["api", "docs"], ["api2"], ["both"]]
    waits = {s["task"]: [w["kind"] for w in s["waits"]] for s in schedule["steps"]}
    assert waits["api2"] == ["scope"] and waits["both"] == ["gate", "parent", "parent"]
    assert _listed(repo) == []  # a dry run queues nothing
    text = run_tsk("plan", "apply", str(_write(tmp_path, PLAN)), "--dry-run", cwd=repo).stdout
    assert "step 1: api, docs  (in parallel)" in text and "api2 starts from the result of api" in text


def test_applied_tasks_wait_for_their_gate_parents_and_scopes_and_say_so(tmp_path: Path, tsk_home: Path) -> None:
    repo = _repo(tmp_path)
    res = run_tsk("plan", "apply", str(_write(tmp_path, PLAN)), "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    ids = {row["plan_id"]: row["id"] for row in json.loads(res.stdout)["tasks"]}
    rows = {r["id"]: r for r in _listed(repo)}
    assert rows[ids["api"]]["status"] == "QUEUED" and rows[ids["docs"]]["status"] == "QUEUED"
    assert rows[ids["api2"]]["blocked"] == f"waiting for scope src/api/v2/** (held by {ids['api']})"
    assert rows[ids["both"]]["blocked"].startswith("waiting for phase 1 (0 of 3 complete)")  # type: ignore[union-attr]
    assert rows[ids["api"]]["scope"] == ["src/api/**"] and rows[ids["api"]]["plan"] == "shop"
    assert rows[ids["both"]]["parents"] == [ids["api"], ids["docs"]]
    again = run_tsk("plan", "apply", str(_write(tmp_path, PLAN)), cwd=repo)
    assert again.returncode == 2 and "plan named `shop` already" in again.stderr and "--name" in again.stderr
    assert len(_listed(repo)) == 4
    shown = json.loads(run_tsk("plan", "show", "shop", "--json", cwd=repo).stdout)
    assert [(t["plan_id"], t["status"]) for t in shown["tasks"]] == [
        ("api", "pending"), ("api2", "blocked"), ("docs", "pending"), ("both", "blocked")]
    cancelled = run_tsk("plan", "cancel", "shop", cwd=repo)
    assert cancelled.returncode == 0 and cancelled.stdout.count("cancelled") == 4
    assert {r["status"] for r in _listed(repo)} == {"CANCELLED"}
    exported = json.loads(run_tsk("plan", "export", "shop", cwd=repo).stdout)
    assert [t["status"] for p in exported["phases"] for t in p["tasks"]] == ["error"] * 4


def test_add_takes_scopes_and_refuses_a_path_outside_the_repo(tmp_path: Path, tsk_home: Path) -> None:
    repo = _repo(tmp_path)
    first = run_tsk("add", "-p", "true", "--scope", "src/**", cwd=repo).stdout.split()[0]
    second = run_tsk("add", "-p", "true", "--scope", "src/db/*.py", "--scope", "docs/", cwd=repo).stdout.split()[0]
    free = run_tsk("add", "-p", "true", "--scope", "web/**", cwd=repo).stdout.split()[0]
    rows = {r["id"]: r for r in _listed(repo)}
    assert rows[first]["status"] == "QUEUED" and rows[free]["status"] == "QUEUED"
    assert rows[second]["status"] == "WAITING" and rows[second]["scope"] == ["src/db/*.py", "docs/"]
    assert "src/db/*.py" in str(rows[second]["blocked"]) and first in str(rows[second]["blocked"])
    bad = run_tsk("add", "-p", "true", "--scope", "../etc/**", cwd=repo)
    assert bad.returncode == 2 and "--scope" in bad.stderr and "Traceback" not in bad.stderr
    run_tsk("cancel", first, cwd=repo)
    rows = {r["id"]: r for r in _listed(repo)}
    assert rows[second]["status"] == "QUEUED"  # its holder ended: it goes, from its own snapshot
    assert git(repo, "status", "--porcelain") == ""


def test_a_task_from_an_issue_is_told_the_issues_text_when_the_forge_answers(tmp_path: Path, tsk_home: Path) -> None:
    repo = _repo(tmp_path)
    manifest = {"project": "issues", "repo": "acme/shop", "phases": [{"tasks": [
        {"id": "t1", "issue": 12, "title": "List orders", "files": ["src/**"], "dependsOn": []},
        {"id": "t2", "issue": 13, "title": "Export orders", "dependsOn": [],
         "validation": ["make test", "ruff check"]}]}]}
    with GitHubServer() as gh:
        gh.answers[("GET", "/repos/acme/shop/issues/12")] = (200, {
            "number": 12, "title": "Orders", "body": "Customers need to list their orders.", "html_url": "u"})
        env = {"GH_TOKEN": "t", "TSK_GITHUB_API": gh.url, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        res = run_tsk("plan", "apply", str(_write(tmp_path, manifest)), "--json", cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    ids = {row["plan_id"]: row["id"] for row in json.loads(res.stdout)["tasks"]}
    told = {pid: next(tsk_home.rglob(f"tasks/{tid}/instructions.md")).read_text() for pid, tid in ids.items()}
    assert "# List orders" in told["t1"] and "Customers need to list their orders." in told["t1"]
    assert "`src/**`" in told["t1"]  # its write scope, said
    assert "GitHub issue #13" in told["t2"]  # the forge did not know it: the number alone
    record = json.loads(next(tsk_home.rglob(f"tasks/{ids['t2']}/task.json")).read_text())
    assert record["config"]["validate"] == "make test && ruff check"  # its validation is its gate
    assert sorted(r["path"] for r in gh.requests) == ["/repos/acme/shop/issues/12", "/repos/acme/shop/issues/13"]


def test_a_retried_plan_task_takes_its_place_in_the_plan(tmp_path: Path, tsk_home: Path) -> None:
    repo = _repo(tmp_path)
    res = run_tsk("plan", "apply", str(_write(tmp_path, PLAN)), "--json", cwd=repo)
    ids = {row["plan_id"]: row["id"] for row in json.loads(res.stdout)["tasks"]}
    assert run_tsk("cancel", ids["api"], cwd=repo).returncode == 0
    rows = {r["id"]: r for r in _listed(repo)}
    assert rows[ids["both"]]["status"] == "CANCELLED"  # its parent was cancelled
    assert rows[ids["api2"]]["status"] == "QUEUED"  # the scope's holder ended
    retried = run_tsk("retry", ids["api"], "--json", cwd=repo)
    assert retried.returncode == 0, retried.stderr
    shown = {t["plan_id"]: t for t in json.loads(run_tsk("plan", "show", "shop", "--json", cwd=repo).stdout)["tasks"]}
    assert shown["api"]["task"] != ids["api"] and shown["api"]["tsk_status"] in ("QUEUED", "WAITING")
    assert shown["both"]["task"] != ids["both"]  # its dependent came back with it
    rows = {r["id"]: r for r in _listed(repo)}
    new_api = rows[shown["api"]["task"]]
    assert new_api["plan"] == "shop" and new_api["scope"] == ["src/api/**"]
    # the new api waits for api2, which now holds the scope and was made before it
    assert new_api["status"] == "WAITING" and ids["api2"] in str(new_api["blocked"])
