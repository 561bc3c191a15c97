"""An upstream tsk's tasks.db at our path: recognized, kept as a backup, migrated in place (its tasks and
their history in `tsk list`, a failed one retried), once; a database from a newer tsk refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from helpers import git, make_repo, run_tsk

from tsk.queue.db import MIGRATIONS

REASON = "imported from upstream tsk"

# As upstream's TaskStorage::new makes it: the table, then the columns later versions added.
UPSTREAM_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, repo_root TEXT NOT NULL, name TEXT NOT NULL, task_type TEXT NOT NULL,
    instructions_file TEXT NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    started_at TEXT, completed_at TEXT, branch_name TEXT NOT NULL, error_message TEXT,
    source_commit TEXT NOT NULL, source_branch TEXT, stack TEXT NOT NULL, project TEXT NOT NULL,
    copied_repo_path TEXT, is_interactive INTEGER NOT NULL DEFAULT 0, parent_ids TEXT
);
CREATE INDEX IF NOT EXISTS idx_tasks_status ON tasks(status);
ALTER TABLE tasks ADD COLUMN network_isolation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN dind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN resolved_config TEXT;
"""


def _upstream_db(data: Path, repo: Path, head: str) -> Path:
    data.mkdir(parents=True)
    (data / "tasks" / "up1").mkdir(parents=True)
    (data / "tasks" / "up1" / "instructions.md").write_text("Add a greeting to the README\n")
    (data / "tasks" / "up2").mkdir()
    (data / "tasks" / "up2" / "instructions.md").symlink_to("/etc/passwd")  # never followed
    db = data / "tasks.db"
    conn = sqlite3.connect(db)
    conn.executescript(UPSTREAM_SCHEMA)
    rows = [
        ("up1", "greet", "feat", "COMPLETE", "2026-11-01T10:00:00.123456789+00:00",
         "2026-11-01T10:00:05+00:00", "2026-11-01T10:03:00+00:00", "tsk/feat/greet/up1", None, None),
        ("up2", "fixit", "fix", "FAILED", "2026-11-02T09:00:00-07:00", "2026-11-02T09:00:02-07:00",
         "2026-11-02T09:01:00-07:00", "tsk/fix/fixit/up2", "agent exited 1", '["up1"]'),
        ("up3", "later", "feat", "QUEUED", "2026-11-03T08:00:00Z", None, None, "tsk/feat/later/up3", None,
         '["up1", "gone"]'),
    ]
    for tid, name, typ, status, created, started, completed, branch, error, parents in rows:
        conn.execute(
            "INSERT INTO tasks (id, repo_root, name, task_type, instructions_file, agent, status, created_at, "
            "started_at, completed_at, branch_name, error_message, source_commit, source_branch, stack, project, "
            "copied_repo_path, is_interactive, parent_ids, network_isolation, dind, resolved_config) "
            "VALUES (?, ?, ?, ?, ?, 'exec', ?, ?, ?, ?, ?, ?, ?, 'trunk', 'default', 'default', NULL, 0, ?, 1, 0, "
            "NULL)",
            (tid, str(repo), name, typ, str(data / "tasks" / tid / "instructions.md"), status, created, started,
             completed, branch, error, head, parents))
    conn.commit()
    conn.close()
    return db


def _list(repo: Path) -> dict[str, dict[str, object]]:
    res = run_tsk("list", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    return {t["id"]: t for t in json.loads(res.stdout)}


def test_an_upstream_database_is_kept_and_migrated_in_place_once(tmp_path: Path, tsk_home: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    data = tsk_home / "data" / "tsk"
    db = _upstream_db(data, repo, head)
    original = db.read_bytes()

    res = run_tsk("list", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    assert "imported 3 task(s) from upstream tsk's database" in res.stderr
    assert "Traceback" not in res.stderr
    tasks = {t["id"]: t for t in json.loads(res.stdout)}
    assert {k: tasks[k]["status"] for k in tasks} == {"up1": "COMPLETE", "up2": "FAILED", "up3": "FAILED"}
    assert tasks["up1"]["branch"] == "tsk/feat/greet/up1" and tasks["up1"]["type"] == "feat"
    assert tasks["up1"]["from_branch"] == "trunk" and tasks["up1"]["source_commit"] == head
    assert tasks["up1"]["duration"] == 175.0  # 10:00:05 to 10:03:00
    assert tasks["up2"]["error"] == "agent exited 1" and tasks["up2"]["parents"] == ["up1"]
    assert "QUEUED under upstream tsk" in str(tasks["up3"]["error"])
    assert "tsk retry up3" in str(tasks["up3"]["error"])
    assert tasks["up3"]["parents"] == ["up1"]  # the parent that was never in the database is dropped

    backup = data / "tasks.db.upstream.bak"
    kept = sqlite3.connect(backup)
    assert kept.execute("SELECT id, status FROM tasks ORDER BY id").fetchall() == [
        ("up1", "COMPLETE"), ("up2", "FAILED"), ("up3", "QUEUED")]
    kept.close()
    assert db.read_bytes() != original

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    history = conn.execute("SELECT from_status, to_status, reason FROM transitions WHERE task = 'up1' "
                           "ORDER BY seq").fetchall()
    assert history == [(None, "QUEUED", REASON), ("QUEUED", "RUNNING", REASON), ("RUNNING", "COMPLETE", REASON)]
    # the instructions that were a regular file came along; the one that was a link did not
    assert conn.execute("SELECT id, instructions FROM tasks ORDER BY id").fetchall() == [
        ("up1", "Add a greeting to the README\n"), ("up2", ""), ("up3", "")]
    conn.close()

    again = run_tsk("list", "--json", cwd=repo)
    assert again.returncode == 0 and "imported" not in again.stderr
    assert len(json.loads(again.stdout)) == 3
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("tasks.db.upstream")) == [
        "tasks.db.upstream.bak"]

    # an imported task that ended is retried as any other: its instructions, its agent, a fresh snapshot
    res = run_tsk("retry", "up1", "--no-children", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    new = json.loads(res.stdout)[0]["new_id"]
    after = _list(repo)
    assert after[new]["status"] == "QUEUED" and after[new]["agent"] == "exec" and after[new]["type"] == "feat"


def test_a_second_upstream_import_never_overwrites_an_earlier_backup(tmp_path: Path, tsk_home: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    data = tsk_home / "data" / "tsk"
    _upstream_db(data, repo, git(repo, "rev-parse", "HEAD"))
    (data / "tasks.db.upstream.bak").write_text("an older backup\n")
    res = run_tsk("list", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    assert (data / "tasks.db.upstream.bak").read_text() == "an older backup\n"
    assert "tasks.db.upstream.bak.1" in res.stderr and (data / "tasks.db.upstream.bak.1").stat().st_size > 0


def test_a_database_from_a_newer_tsk_is_refused_clearly(tmp_path: Path, tsk_home: Path) -> None:
    data = tsk_home / "data" / "tsk"
    data.mkdir(parents=True)
    conn = sqlite3.connect(data / "tasks.db")
    conn.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY)")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 7}")
    conn.commit()
    conn.close()
    res = run_tsk("list", cwd=tmp_path)
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert f"schema version {len(MIGRATIONS) + 7}, made by a newer tsk" in res.stderr
    assert "upgrade tsk" in res.stderr and "Traceback" not in res.stderr
