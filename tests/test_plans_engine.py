"""Plans against the real engine, with exec agents playing the tasks: a five-task plan with a phase gate,
two tasks sharing a write scope, one joining two others and one on its own; then the conflict matrix,
landing, pushing to a bare remote and pull requests against a local server in GitHub's place; and a plan
written by a task."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from helpers import PROJECT, GitHubServer, git, make_repo, run_tsk

TOKEN = "ghp_plan_test_token"


def _commit(path: str, text: str, then: str = "") -> str:
    """An exec task's script: write one file and commit it."""
    d = path.rsplit("/", 1)[0] if "/" in path else "."
    return f"{then}mkdir -p {d} && echo {text} > {path} && git add -A && git commit -qm '{text}'"


MANIFEST = {"project": "shop", "repo": "acme/shop", "phases": [
    {"name": "backend", "tasks": [
        # api is slow on purpose: were api2 not held back by the scope they share, it would start meanwhile
        {"id": "api", "title": "Add the orders API", "issue": 12, "files": ["src/api/**"], "dependsOn": [],
         "prompt": _commit("src/api/orders", "orders", "sleep 3 && ")},
        {"id": "api2", "title": "Page the orders API", "files": ["src/api/**"], "dependsOn": [],
         "prompt": _commit("src/api/pages", "pages", "test -f src/api/orders && ")},
        {"id": "docs", "title": "Document orders", "files": ["docs/**"], "dependsOn": [],
         "prompt": _commit("docs/orders", "docs")},
        {"id": "solo", "title": "Tidy the readme", "dependsOn": [], "prompt": _commit("NOTES", "notes")}]},
    {"name": "frontend", "tasks": [
        {"id": "ui", "title": "Show orders", "files": ["web/**"], "dependsOn": ["api", "docs"],
         "prompt": _commit("web/orders", "ui", "test -f src/api/orders && test -f docs/orders && ")}]}]}


def _repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "shop", {**PROJECT, ".tsk/tsk.toml": 'stack = "default"\nagent = "exec"\n'})
    return repo


def _serve(repo: Path, workers: int = 3, env: dict[str, str] | None = None) -> None:
    res = run_tsk("server", "start", "--plain", "-q", "-w", str(workers), cwd=repo, env=env, timeout=600)
    assert res.returncode == 0, res.stderr + res.stdout


def _moves(tsk_home: Path) -> dict[str, dict[str, float]]:
    """task -> {status: when it entered it}"""
    db = sqlite3.connect(next(tsk_home.rglob("tasks.db")))
    out: dict[str, dict[str, float]] = {}
    for task, to, at in db.execute("SELECT task, to_status, at FROM transitions ORDER BY seq"):
        out.setdefault(task, {})[to] = at
    db.close()
    return out


def test_a_plan_runs_by_its_gates_parents_and_scopes_then_lands_pushes_and_opens_pull_requests(
        tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    repo = _repo(tmp_path)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(MANIFEST))
    with GitHubServer() as gh:
        env = {"GH_TOKEN": TOKEN, "TSK_GITHUB_API": gh.url, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        applied = run_tsk("plan", "apply", str(plan), "--json", cwd=repo, env=env)
        assert applied.returncode == 0, applied.stderr
        ids = {row["plan_id"]: row["id"] for row in json.loads(applied.stdout)["tasks"]}
        assert gh.requests == []  # a task with its own prompt needs no issue text

        _serve(repo, env=env)
        shown = json.loads(run_tsk("plan", "show", "shop", "--json", "--no-refresh", cwd=repo).stdout)
        assert {t["plan_id"]: t["status"] for t in shown["tasks"]} == dict.fromkeys(ids, "complete"), shown
        branch = {t["plan_id"]: t["branch"] for t in shown["tasks"]}
        moves = _moves(tsk_home)
        # the scope: api2 ran only after api ended, and builds on its work
        assert moves[ids["api2"]]["RUNNING"] >= moves[ids["api"]]["COMPLETE"]
        assert git(repo, "show", f"{branch['api2']}:src/api/orders").strip() == "orders"
        # the gate: nothing of phase 2 ran before all of phase 1 had completed
        assert moves[ids["ui"]]["RUNNING"] >= max(moves[ids[t]]["COMPLETE"] for t in ("api", "api2", "docs", "solo"))
        # the join: ui started from the merge of api's and docs' results
        assert git(repo, "show", f"{branch['ui']}:docs/orders").strip() == "docs"
        # the one on its own ran in the first phase, beside api
        assert moves[ids["solo"]]["RUNNING"] < moves[ids["api"]]["COMPLETE"]

        conflicts = run_tsk("conflicts", "--plan", "shop", "--json", cwd=repo)
        assert conflicts.returncode == 0, conflicts.stdout + conflicts.stderr
        assert not any(p["conflict"] for p in json.loads(conflicts.stdout)["matrix"]["pairs"])

        head, status = git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")
        landed = run_tsk("land", "--plan", "shop", "--into", "integration", cwd=repo)
        assert landed.returncode == 0, landed.stderr
        for path in ("src/api/orders", "src/api/pages", "docs/orders", "NOTES", "web/orders"):
            git(repo, "cat-file", "-e", f"integration:{path}")
        assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == status

        gh.answers[("POST", "/repos/acme/shop/pulls")] = (201, {
            "number": 41, "html_url": "https://github.com/acme/shop/pull/41", "state": "open", "title": "t",
            "head": {"ref": "h"}, "base": {"ref": "trunk"}, "draft": False, "merged": False})
        pushed = run_tsk("push", ids["api"], ids["docs"], "--pr", "--base", "trunk", "--json", cwd=repo, env=env)
        assert pushed.returncode == 0, pushed.stderr
        rows = json.loads(pushed.stdout)
        assert [r["push"] for r in rows] == ["new", "new"] and {r["pr_number"] for r in rows} == {41}
        assert git(bare, "rev-parse", branch["api"]) == git(repo, "rev-parse", branch["api"])
        posts = [r for r in gh.requests if r["method"] == "POST"]
        assert len(posts) == 2 and all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in posts)  # type: ignore[index]
        body = posts[0]["body"]
        assert isinstance(body, dict)
        assert body["title"] == "Add the orders API" and body["head"] == branch["api"] and body["base"] == "trunk"
        assert body["draft"] is False and "Closes #12" in body["body"] and "echo orders" in body["body"]
        again = json.loads(run_tsk("push", ids["api"], "--pr", "--base", "trunk", "--json", cwd=repo, env=env).stdout)
        assert again[0]["note"] == "its pull request is open already"
        assert len([r for r in gh.requests if r["method"] == "POST"]) == 2

        gh.answers[("GET", "/repos/acme/shop/pulls/41")] = (200, {
            "number": 41, "html_url": "https://github.com/acme/shop/pull/41", "state": "closed", "merged": True,
            "title": "t", "head": {"ref": "h"}, "base": {"ref": "trunk"}})
        refreshed = json.loads(run_tsk("plan", "show", "shop", "--json", cwd=repo, env=env).stdout)
        words = {t["plan_id"]: t["status"] for t in refreshed["tasks"]}
        assert words["api"] == words["docs"] == "merged" and words["ui"] == "complete"
        exported = json.loads(run_tsk("plan", "export", "shop", cwd=repo).stdout)
        api = exported["phases"][0]["tasks"][0]
        assert api["status"] == "merged" and api["prNumber"] == 41 and api["branch"] == branch["api"]


def test_siblings_that_edit_the_same_line_conflict_and_landing_stops_there(
        tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    repo = _repo(tmp_path)
    graph = {"project": "rival", "tasks": [
        {"id": "left", "name": "Left", "prompt": "echo left > README.md && git commit -qam left"},
        {"id": "right", "name": "Right", "prompt": "echo right > README.md && git commit -qam right"},
        {"id": "other", "name": "Other", "write_scope": ["OTHER"],
         "prompt": "echo stray > STRAY && " + _commit("OTHER", "other")}]}
    plan = tmp_path / "graph.json"
    plan.write_text(json.dumps(graph))
    assert run_tsk("plan", "apply", str(plan), cwd=repo).returncode == 0
    _serve(repo, workers=2)
    res = run_tsk("conflicts", "--plan", "rival", "--json", cwd=repo)
    assert res.returncode == 1, res.stderr
    pairs = json.loads(res.stdout)["matrix"]["pairs"]
    conflicting = [(p["a"], p["b"], p["files"]) for p in pairs if p["conflict"]]
    assert len(pairs) == 3 and len(conflicting) == 1 and conflicting[0][2] == ["README.md"]
    text = run_tsk("conflicts", "--plan", "rival", cwd=repo).stdout
    assert "conflict in README.md" in text and text.count("merge cleanly") == 2
    assert list(json.loads(res.stdout)["outside_scope"].values()) == [["STRAY"]]  # it wrote past its scope
    assert "changed outside its scope: STRAY" in text
    shown = json.loads(run_tsk("plan", "show", "rival", "--json", cwd=repo).stdout)
    assert {t["plan_id"]: t["outside_scope"] for t in shown["tasks"]} == {"left": [], "right": [], "other": ["STRAY"]}
    landed = run_tsk("land", "--plan", "rival", "--into", "together", cwd=repo)
    assert landed.returncode == 1 and "conflicts in README.md" in landed.stderr
    assert git(repo, "show", "together:README.md").strip() == "left"  # what merged before the conflict is landed
    refused = run_tsk("land", "--plan", "rival", "--into", git(repo, "branch", "--show-current").strip(), cwd=repo)
    assert refused.returncode == 2 and "checked out" in refused.stderr


def test_a_plan_task_writes_a_plan_that_is_read_from_its_branch_and_checked(
        tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    repo = _repo(tmp_path)
    graph = json.dumps({"project": "written", "tasks": [
        {"id": "a", "name": "A", "prompt": "true"}, {"id": "b", "name": "B", "depends_on": ["a"], "prompt": "true"}]})
    script = f"mkdir -p .tsk && printf '%s' '{graph}' > .tsk/plan.json && git add -A && git commit -qm plan"
    made = json.loads(run_tsk("run", "--json", "-p", script, cwd=repo, timeout=600).stdout)
    assert made["status"] == "COMPLETE", made
    dry = run_tsk("plan", "apply", "--from-task", made["id"], "--dry-run", "--json", cwd=repo)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["schedule"]["levels"] == [["a"], ["b"]]
    applied = run_tsk("plan", "apply", "--from-task", made["id"], cwd=repo)
    assert applied.returncode == 0 and "2 task(s) queued" in applied.stdout
    # a plan that is a link in the task's result is refused, not followed
    hostile = "mkdir -p .tsk && ln -s /etc/passwd .tsk/plan.json && git add -A && git commit -qm link"
    linked = json.loads(run_tsk("run", "--json", "-p", hostile, cwd=repo, timeout=600).stdout)
    res = run_tsk("plan", "apply", "--from-task", linked["id"], cwd=repo)
    assert res.returncode == 2 and "not a regular file" in res.stderr
    none = run_tsk("plan", "apply", "--from-task", made["id"][:8], "x.json", cwd=repo)
    assert none.returncode == 2 and "not both" in none.stderr
