"""The runner's decisions on the fake engine (tests/fakes.py): what a task ends as when it is cancelled
before or after its container starts, when setting up fails, when cleanup fails, and when its image is
pruned between resolving it and creating the container. The real engine proves the sandbox itself
(tests/test_run_engine.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeBuilder, FakeEngine
from helpers import make_repo

from tsk.context import Context
from tsk.engine.spec import ContainerSpec
from tsk.errors import EngineError
from tsk.queue.control import Quiet
from tsk.queue.db import SqliteStore
from tsk.sandbox.runner import RunRequest, create_task, execute
from tsk.tasks import model
from tsk.tasks.model import Task


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.repo = make_repo(tmp_path / "repo", {"README.md": "x\n",
                                                 ".tsk/tsk.toml": 'stack = "default"\nagent = "exec"\n'})
        self.engine = FakeEngine()
        self.engine.add("debian:trixie")
        self.builder = FakeBuilder(self.engine)
        self.ctx = Context(cwd=self.repo, engine=self.engine, builder=lambda: self.builder)
        self.store = SqliteStore(self.ctx.paths.data)
        self.notes: list[str] = []

    def task(self) -> Task:
        task = create_task(self.ctx, RunRequest(instructions="echo hello\n", agent="exec", repo=str(self.repo)),
                           Quiet())
        task.status = "RUNNING"
        self.store.add(task, instructions="echo hello\n", reason="test", owner="test")
        # the agent's output, once its container exists
        self.engine.after["container_create"] = lambda ident: self.engine.boxes[ident].logs.append(b"hello\n") \
            if ident.startswith("tsk-task-") else None
        return task

    def run(self, task: Task, *, raise_setup_errors: bool = False) -> Task:
        ui = Quiet()
        ui.note = self.notes.append  # type: ignore[method-assign]
        return execute(self.ctx, task, ui, self.store, raise_setup_errors=raise_setup_errors).task

    def recorded(self, task: Task) -> Task:
        got = self.store.get(task.id)
        assert got is not None
        return got

    def leftovers(self, task: Task) -> list[str]:
        label = f"dev.tsk.task={task.id}"
        return [c.name for c in self.engine.containers(label)] + self.engine.volumes(label)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from tsk.sandbox import ladder

    monkeypatch.setattr(ladder, "INFRA_PAUSE", 0.0)  # the ladder waits before an infra retry; not in these tests
    w = World(tmp_path)
    yield w
    w.store.close()


def test_a_task_runs_to_complete_and_leaves_nothing_behind(world: World) -> None:
    task = world.task()
    done = world.run(task)
    assert done.status == "COMPLETE" and world.recorded(task).status == "COMPLETE"
    assert world.engine.calls.count("container_start") == 2  # the proxy, then the task
    log = model.agent_log(model.task_dir(world.ctx.paths.data, task.id)).read_text()
    assert '"hello"' in log
    assert world.leftovers(task) == []


def test_cancel_before_the_start_never_starts_the_container(world: World) -> None:
    task = world.task()
    world.store.request_cancel(task.id, "cancelled by tsk cancel")
    done = world.run(task)
    assert done.status == "CANCELLED" and done.error == "cancelled by tsk cancel"
    assert f"tsk-task-{task.id}" not in world.engine.stopped
    assert world.engine.calls.count("container_start") == 1  # only the proxy
    assert done.started is None and world.leftovers(task) == []


def test_cancel_just_after_the_start_stops_the_container_and_still_fetches(world: World) -> None:
    task = world.task()
    name = f"tsk-task-{task.id}"

    def cancel_meanwhile(ident: str) -> None:
        if ident == name:
            world.store.request_cancel(task.id, "cancelled from the dashboard")

    world.engine.after["container_start"] = cancel_meanwhile
    done = world.run(task)
    assert done.status == "CANCELLED" and done.error == "cancelled from the dashboard"
    assert world.engine.stopped == [name]
    assert "fetch" in done.timings  # its partial work was still looked for
    assert world.recorded(task).status == "CANCELLED" and world.leftovers(task) == []


def test_an_engine_failure_once_is_an_infra_attempt_followed_by_a_fresh_one(world: World) -> None:
    task = world.task()
    world.engine.fail["container_create"] = EngineError("the engine refused the request: no space left")
    done = world.run(task)
    assert done.status == "COMPLETE" and done.attempts == 2
    first, second = world.store.attempts(task.id)
    assert first.failure_class == "infra" and "no space left" in (first.reason or "") and second.failure_class is None
    assert world.leftovers(task) == []
    assert any("attempt 1 of 3: infra" in n for n in world.notes), world.notes


def test_a_lasting_setup_error_fails_after_its_attempts_and_is_raised_for_tsk_run(world: World) -> None:
    def refuse_every_time(_volume: str) -> None:
        world.engine.fail["container_create"] = EngineError("the engine refused the request: no space left")

    world.engine.after["volume_create"] = refuse_every_time
    task = world.task()
    with pytest.raises(EngineError, match="no space left"):
        world.run(task, raise_setup_errors=True)
    recorded = world.recorded(task)
    assert recorded.status == "FAILED" and "no space left" in (recorded.error or "") and recorded.attempts == 3
    assert recorded.failure_class == "infra"
    assert world.leftovers(task) == []  # the volume made before each failure is gone
    again = world.task()
    assert world.run(again).status == "FAILED"  # a server worker gets the result, not the exception


def test_a_config_error_is_final_at_once(world: World) -> None:
    from tsk.errors import ConfigError

    world.engine.fail["container_create"] = ConfigError("bad config")
    task = world.task()
    done = world.run(task)
    assert done.status == "FAILED" and done.attempts == 1


def test_a_cleanup_failure_does_not_change_the_result(world: World) -> None:
    task = world.task()
    world.engine.fail["container_remove"] = EngineError("the engine refused the request: device busy")
    done = world.run(task)
    assert done.status == "COMPLETE" and world.recorded(task).status == "COMPLETE"
    assert any("cleanup" in n and "device busy" in n for n in world.notes), world.notes


def test_an_image_pruned_between_resolving_and_creating_is_made_again(world: World) -> None:
    task = world.task()

    def prune_the_image(volume: str) -> None:
        if volume.startswith("tsk-task-"):
            del world.engine.after["volume_create"]
            for ref in [r for r in world.engine.images_by_ref if r.startswith("tsk/layer:agent-")]:
                world.engine.remove_image(ref)

    world.run(world.task())  # warm: every layer exists
    built = world.builder.calls
    world.engine.after["volume_create"] = prune_the_image
    done = world.run(task)
    assert done.status == "COMPLETE", done.error
    assert world.builder.calls == built + 1  # the agent layer, made again; nothing below it
    assert any("removed meanwhile" in n for n in world.notes)


def test_secrets_reach_the_agent_through_a_0600_file_never_the_record_or_the_containers_env(world: World) -> None:
    import os
    import sqlite3
    import stat

    from helpers import trust

    (world.repo / ".tsk" / "tsk.toml").write_text('stack = "default"\nagent = "exec"\nenv = [{name = "API_TOKEN", '
                                                  'value = "s3cr3t-value"}, {name = "MODE", value = "plain"}]\n')
    trust(world.repo)
    world.ctx.environ["ANTHROPIC_API_KEY"] = "sk-host-key"  # an agent's key from the host's environment
    task = create_task(world.ctx, RunRequest(instructions="true\n", agent="claude", repo=str(world.repo)), Quiet())
    task.status = "RUNNING"
    world.store.add(task, instructions="true\n", reason="test", owner="test")
    tdir = model.task_dir(world.ctx.paths.data, task.id)
    assert (tdir / "secrets.json").is_file() and stat.S_IMODE((tdir / "secrets.json").stat().st_mode) == 0o600
    seen: dict[str, object] = {}

    def look(ident: str) -> None:
        if ident.startswith("tsk-task-"):
            seen["spec"] = world.engine.boxes[ident].spec
            seen["file"] = (tdir / "secrets.env").read_bytes()
            seen["mode"] = stat.S_IMODE((tdir / "secrets.env").stat().st_mode)

    world.engine.after["container_create"] = look
    world.run(task)
    spec = seen["spec"]
    assert isinstance(spec, ContainerSpec)
    assert "API_TOKEN" not in spec.env and "ANTHROPIC_API_KEY" not in spec.env and spec.env["MODE"] == "plain"
    assert any(m.target == "/tsk/secrets.env" and m.read_only for m in spec.mounts)
    secret_file = seen["file"]
    assert isinstance(secret_file, bytes)
    assert b"API_TOKEN=s3cr3t-value" in secret_file and b"ANTHROPIC_API_KEY=sk-host-key" in secret_file
    assert seen["mode"] == 0o600
    assert not (tdir / "secrets.env").exists() and not (tdir / "secrets.json").exists()  # gone with the task
    for path in (tdir / "task.json", world.ctx.paths.data / "tasks.db"):
        data = path.read_bytes()
        assert b"s3cr3t-value" not in data and b"sk-host-key" not in data, path
    rows = sqlite3.connect(world.ctx.paths.data / "tasks.db").execute("SELECT config FROM tasks").fetchall()
    assert any("plain" in r[0] for r in rows)  # the rest of the env is kept
    assert os.environ.get("ANTHROPIC_API_KEY") != "sk-host-key"


def test_a_failed_validation_carries_on_into_an_attempt_that_knows_why(world: World) -> None:
    (world.repo / ".tsk" / "tsk.toml").write_text('stack = "default"\nagent = "exec"\nvalidate = "make test"\n')
    task = world.task()
    out = model.output(model.task_dir(world.ctx.paths.data, task.id))
    verdicts = iter([b"1\n", b"0\n"])
    seen: list[object] = []

    def the_container_validates(ident: str) -> None:  # what run.sh writes into /tsk/output
        if ident.startswith("tsk-task-"):
            spec = world.engine.boxes[ident].spec
            seen.append(spec and {m.target for m in spec.mounts})
            (out / "validation.log").write_text("FAILED test_parser\n")
            (out / "validation-exit").write_bytes(next(verdicts))

    world.engine.after["container_start"] = the_container_validates
    done = world.run(task)
    assert done.status == "COMPLETE" and done.attempts == 2 and done.failure_class is None
    first, second = world.store.attempts(task.id)
    assert (first.failure_class, first.validation_exit, second.validation_exit) == ("validation", 1, 0)
    assert "FAILED test_parser" in first.validation_tail
    assert "/tsk/previous-attempt.md" not in seen[0] and "/tsk/previous-attempt.md" in seen[1]  # type: ignore[operator]
    assert "/tsk/validate.sh" in seen[0]  # type: ignore[operator]
