"""The server dashboard driven as a person would: textual's pilot for keys and clicks, and once in a
real terminal through tmux. The queue behind it is a fake TaskSource over log files in tmp_path.

Run as a script (`python tests/test_dashboard.py DIR`) it shows the dashboard over a fake source in
DIR; the tmux test does that."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
from helpers import wait_until, wait_until_async
from textual.message import Message as TextualMessage
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import DataTable, Log, Static

from tsk.agents.events import Event, Message, ToolUse, encode_event
from tsk.cli.dashboard import Confirm, Dashboard, LogTail, run_dashboard
from tsk.queue.view import TaskRow

REFRESH = 0.05


class Clock:
    """The time the dashboard sees, moved by the test instead of waited for."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSource:
    """Rows held in memory, logs as real files; records what the dashboard asked for."""

    def __init__(self, root: Path, rows: list[TaskRow], clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.tasks = list(rows)
        self.clock = clock
        self.cancelled: list[str] = []
        self.deleted: list[str] = []

    def rows(self) -> list[TaskRow]:
        return list(self.tasks)

    def log_path(self, task_id: str) -> Path:
        return self.root / task_id / "output" / "agent.log"

    def cancel(self, task_id: str) -> None:
        self.cancelled.append(task_id)
        self.tasks = [msgspec.structs.replace(r, status="CANCELLED", finished=self.clock()) if r.id == task_id else r
                      for r in self.tasks]

    def delete(self, task_id: str) -> None:
        self.deleted.append(task_id)
        self.tasks = [r for r in self.tasks if r.id != task_id]

    def log(self, task_id: str, *events: Event | bytes) -> None:
        path = self.log_path(task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as f:
            for e in events:
                f.write((e if isinstance(e, bytes) else encode_event(e)) + b"\n")


def _source(root: Path, clock: Callable[[], float] = time.time) -> FakeSource:
    now = clock()
    src = FakeSource(root, [
        TaskRow(id="aaa111", name="fix-parser", type="fix", status="RUNNING", agent="exec", created=now - 30,
                started=now - 20, host="alpha", attempts=2, max_attempts=3, why="stalled: the agent printed nothing for 20m"),
        TaskRow(id="bbb222", name="add-docs", type="doc", status="COMPLETE", agent="claude", created=now - 90,
                started=now - 80, finished=now - 60, branch="tsk/doc/add-docs/bbb222"),
    ], clock)
    src.log("aaa111", Message(text="alpha starts"), ToolUse(tool="Bash", summary="pytest -q"))
    src.log("bbb222", Message(text="beta says hello"), b"not json at all")
    return src


def _dashboard(src: FakeSource, stop: Callable[[], None] = lambda: None,
               finished: Callable[[], bool] | None = None) -> Dashboard:
    """The dashboard over `src`, on the source's clock."""
    return Dashboard(src, stop=stop, refresh=REFRESH, finished=finished, clock=src.clock)


def _drive(app: Dashboard, script: Callable[[Pilot[None], Dashboard], Awaitable[None]],
           notes: list[str] | None = None) -> None:
    """Run `script` against the app; `notes` collects the notifications it shows."""
    def heard(message: TextualMessage) -> None:
        if notes is not None and isinstance(message, Notify):
            notes.append(message.notification.message)

    async def main() -> None:
        async with app.run_test(size=(140, 30), message_hook=heard) as pilot:
            await script(pilot, app)

    asyncio.run(main())


async def _until(pilot: Pilot[None], cond: Callable[[], bool], timeout: float = 5.0,
                 what: str = "the dashboard to show it") -> float:
    """Seconds until `cond` held, letting the app run between two looks; fails after `timeout`."""
    return await wait_until_async(cond, timeout=timeout, what=what, pause=lambda: pilot.pause(0.01))


async def _refreshed(pilot: Pilot[None], app: Dashboard, times: int = 1) -> None:
    """Until the dashboard has read its source `times` more times: whatever it was going to show or do
    with what the source says now, it has had its chance."""
    done = app.refreshes + times
    await _until(pilot, lambda: app.refreshes >= done, what=f"{times} more refresh(es)")


async def _asked(pilot: Pilot[None], app: Dashboard) -> None:
    """Until the question is the screen that takes the keys."""
    await _until(pilot, lambda: isinstance(app.screen, Confirm) and app.screen.is_mounted, what="the question")


async def _answered(pilot: Pilot[None], app: Dashboard, answers: int) -> None:
    """Until `answers` questions have been answered, the question is gone and what an answer started
    has finished."""
    await _until(pilot, lambda: app.answers == answers and not app.screen.is_modal
                 and all(w.is_finished for w in app.workers), what=f"answer {answers}")


def _row_under(app: Dashboard, widget: DataTable[object], offset: tuple[int, int]) -> object:
    """The table row drawn at `offset` in `widget` (what a click there hits), or None."""
    x, y = widget.region.offset + offset
    return app.screen.get_style_at(x, y).meta.get("row")


def _lines(app: Dashboard) -> list[str]:
    return list(app.query_one("#log", Log).lines)


def _stopper() -> tuple[list[int], Callable[[], None]]:
    calls: list[int] = []
    return calls, lambda: calls.append(1)


def test_rows_appear_after_the_empty_state(tmp_path: Path) -> None:
    clock = Clock()
    src = FakeSource(tmp_path, [], clock)
    app = _dashboard(src)

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        empty = app.query_one("#empty", Static)
        table = app.query_one("#tasks", DataTable)
        assert empty.display and not table.display
        src.tasks = _source(tmp_path, clock).tasks
        await _until(pilot, lambda: table.row_count == 2)
        assert table.display and not empty.display
        first = [str(c) for c in table.get_row_at(0)]
        assert first[:6] == ["RUNNING", "aaa111", "fix-parser", "exec", "alpha", "2/3"]  # which host runs it
        assert first[6].endswith("s") and first[7] == ""
        assert [str(c) for c in table.get_row_at(1)] == ["COMPLETE", "bbb222", "add-docs", "claude", "-", "-", "20s",
                                                        "tsk/doc/add-docs/bbb222"]
        assert "attempt 2/3" in str(app.query_one("#log", Log).border_title)
        assert "stalled" in str(app.query_one("#log", Log).border_title)
        assert table.get_row_at(0)[0].style == "bold cyan"  # status is coloured
        assert app.selected_id() == "aaa111"
        assert _lines(app) == ["⏺ alpha starts", "⏺ Bash: pytest -q"]

    _drive(app, script)


def test_running_duration_is_live(tmp_path: Path) -> None:
    clock = Clock()
    src = _source(tmp_path, clock)
    src.tasks[0].started = clock.now - 58.5
    app = _dashboard(src)

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        table = app.query_one("#tasks", DataTable)
        await _until(pilot, lambda: str(table.get_row_at(0)[6]) == "58s")
        # nothing about the task changes, only the time
        clock.now += 0.5
        await _until(pilot, lambda: str(table.get_row_at(0)[6]) == "59s")
        clock.now += 1
        await _until(pilot, lambda: str(table.get_row_at(0)[6]) == "1m00s", timeout=3)

    _drive(app, script)


def test_keys_and_clicks_move_the_selection_and_the_log_follows_it(tmp_path: Path) -> None:
    app = _dashboard(_source(tmp_path, Clock()))

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        await _until(pilot, lambda: "⏺ alpha starts" in _lines(app))
        for key, want in (("down", "bbb222"), ("k", "aaa111"), ("j", "bbb222"), ("up", "aaa111")):
            await pilot.press(key)
            await _until(pilot, lambda w=want: app.selected_id() == w)  # type: ignore[misc]
            if want == "bbb222":  # the other task's log, and only it; a line that is not an event shown raw
                expected = ["⏺ beta says hello", "not json at all"]
            else:
                expected = ["⏺ alpha starts", "⏺ Bash: pytest -q"]
            await _until(pilot, lambda e=expected: _lines(app) == e)  # type: ignore[misc]
        table = app.query_one("#tasks", DataTable)
        spot = (2, 3)  # border, header, aaa111, bbb222
        await _until(pilot, lambda: _row_under(app, table, spot) == 1, what="bbb222 drawn where the click lands")
        await pilot.click("#tasks", offset=spot)
        await _until(pilot, lambda: app.selected_id() == "bbb222")
        assert app.query_one("#log", Log).border_title == "bbb222 · add-docs"

    _drive(app, script)


def test_an_appended_line_appears_within_a_refresh(tmp_path: Path) -> None:
    src = _source(tmp_path, Clock())
    app = _dashboard(src)

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        await _until(pilot, lambda: len(_lines(app)) == 2)
        path = src.log_path("aaa111")
        with path.open("ab") as f:  # half a line: nothing shows until its newline arrives
            f.write(encode_event(Message(text="arrived later"))[:10])
        await _refreshed(pilot, app)
        assert len(_lines(app)) == 2
        with path.open("ab") as f:
            f.write(encode_event(Message(text="arrived later"))[10:] + b"\n")
        took = await _until(pilot, lambda: _lines(app)[-1:] == ["⏺ arrived later"])
        assert took < 2.0  # a few refreshes; generous for a loaded machine
        assert len(_lines(app)) == 3  # read incrementally: nothing shown twice

    _drive(app, script)


def test_scrolling_back_pauses_following_and_end_resumes(tmp_path: Path) -> None:
    src = _source(tmp_path, Clock())
    src.log("aaa111", *(Message(text=f"line {i}", role="output") for i in range(100)))
    app = _dashboard(src)

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        log = app.query_one("#log", Log)
        await _until(pilot, lambda: len(_lines(app)) == 102 and log.is_vertical_scroll_end and log.scroll_y > 0)
        assert app.following and "following" in str(log.border_subtitle)
        await pilot.click("#log")
        await pilot.press("pageup")
        await _until(pilot, lambda: not app.following)
        assert "paused" in str(log.border_subtitle)
        held = log.scroll_y
        src.log("aaa111", Message(text="while paused", role="output"))
        await _until(pilot, lambda: _lines(app)[-1] == "while paused")
        await _refreshed(pilot, app, 2)
        assert log.scroll_y == held and not app.following  # the view did not jump
        await pilot.press("end")
        await _until(pilot, lambda: app.following and log.is_vertical_scroll_end)
        src.log("aaa111", Message(text="after resume", role="output"))
        await _until(pilot, lambda: _lines(app)[-1] == "after resume" and log.is_vertical_scroll_end)
        assert log.scroll_y > held
        # scrolling back down to the end by hand resumes too
        await pilot.press("pageup")
        await _until(pilot, lambda: not app.following)
        for _ in range(5):
            await pilot.press("pagedown")
        await _until(pilot, lambda: app.following)

    _drive(app, script)


def test_cancel_asks_first_then_cancels_the_selected_task(tmp_path: Path) -> None:
    src = _source(tmp_path, Clock())
    app = _dashboard(src)
    notes: list[str] = []

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        table = app.query_one("#tasks", DataTable)
        await _until(pilot, lambda: table.row_count == 2)
        await pilot.press("c")
        await _asked(pilot, app)
        await pilot.press("n")  # backed out
        await _answered(pilot, app, 1)
        assert src.cancelled == []
        await pilot.press("j")
        await _until(pilot, lambda: app.selected_id() == "bbb222")
        await pilot.press("c")  # an ended task is not cancelled, and not asked about
        await _until(pilot, lambda: "bbb222 has already ended (COMPLETE)" in notes, what="the warning")
        assert not app.screen.is_modal
        await pilot.press("k")
        await _until(pilot, lambda: app.selected_id() == "aaa111")
        await pilot.press("c")
        await _asked(pilot, app)
        assert app.screen.is_modal
        await pilot.press("y")
        await _until(pilot, lambda: src.cancelled == ["aaa111"])
        await _until(pilot, lambda: str(table.get_row_at(0)[0]) == "CANCELLED")

    _drive(app, script, notes)


def test_delete_asks_first_then_deletes(tmp_path: Path) -> None:
    src = _source(tmp_path, Clock())
    app = _dashboard(src)

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        table = app.query_one("#tasks", DataTable)
        await _until(pilot, lambda: table.row_count == 2)
        await pilot.press("j")
        await _until(pilot, lambda: app.selected_id() == "bbb222")
        await pilot.press("d")
        await _asked(pilot, app)
        await pilot.press("escape")
        await _answered(pilot, app, 1)
        assert src.deleted == []
        await pilot.press("d")
        await _asked(pilot, app)
        await pilot.press("y")
        await _until(pilot, lambda: table.row_count == 1)
        assert src.deleted == ["bbb222"]
        assert app.selected_id() == "aaa111" and "⏺ alpha starts" in _lines(app)

    _drive(app, script)


def test_q_stops_the_server_then_exits(tmp_path: Path) -> None:
    calls, stop = _stopper()
    app = _dashboard(_source(tmp_path, Clock()), stop)

    async def script(pilot: Pilot[None], app: Dashboard) -> None:
        await _refreshed(pilot, app)
        assert calls == []
        await pilot.press("q")
        await _until(pilot, lambda: app.return_code is not None)
        assert calls == [1]

    _drive(app, script)


def test_ctrl_c_stops_too_and_a_server_that_ended_closes_the_view(tmp_path: Path) -> None:
    calls, stop = _stopper()
    app = _dashboard(_source(tmp_path, Clock()), stop)

    async def ctrl_c(pilot: Pilot[None], app: Dashboard) -> None:
        await pilot.press("ctrl+c")
        await _until(pilot, lambda: app.return_code is not None)

    _drive(app, ctrl_c)
    assert calls == [1]

    ended = False
    app = _dashboard(_source(tmp_path, Clock()), stop, finished=lambda: ended)

    async def server_ends(pilot: Pilot[None], app: Dashboard) -> None:
        nonlocal ended
        await _refreshed(pilot, app, 2)  # each refresh asks whether the server ended
        assert app.return_code is None
        ended = True
        await _until(pilot, lambda: app.return_code is not None)

    _drive(app, server_ends)
    assert calls == [1]  # not asked to stop again: it had already ended


def test_log_tail_starts_a_big_log_at_its_last_chunk(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import tsk.cli.dashboard as dashboard

    monkeypatch.setattr(dashboard, "CHUNK", 100)
    path = tmp_path / "agent.log"
    path.write_bytes(b"".join(encode_event(Message(text=f"n{i}", role="output")) + b"\n" for i in range(20)))
    tail = LogTail(path)
    lines = tail.read()
    assert lines[0].startswith("… earlier lines are in")
    assert lines[-1] == "n19" and 1 < len(lines) < 20
    assert all(line.startswith("n") for line in lines[1:])  # no half line at the cut
    assert tail.read() == []
    assert LogTail(tmp_path / "missing.log").read() == []


def test_help_does_not_import_textual() -> None:
    # The dashboard is the only user of textual; `tsk --help` (and every other command) must not pay for it.
    code = ("import sys\nfrom tsk.cli.main import run\nrun(['--help'])\n"
            "bad = [m for m in ('textual', 'tsk.cli.dashboard') if m in sys.modules]\nassert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


# -- a real terminal, through tmux ---------------------------------------------------------------


def _tmux(sock: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=False)


def test_dashboard_in_a_real_terminal(tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is needed to drive the dashboard in a terminal"
    sock = f"tsk-dash-{tmp_path.name}"
    marker = tmp_path / "stopped"
    _tmux(sock, "new-session", "-d", "-s", "dash", "-x", "140", "-y", "30",
          f"{sys.executable} {Path(__file__)} {tmp_path}")
    try:
        def screen() -> str:
            return _tmux(sock, "capture-pane", "-p", "-t", "dash").stdout

        def shown() -> str | None:
            # the list, the selected task's log, and the footer naming the keys
            now = screen()
            return now if all(s in now for s in ("fix-parser", "RUNNING", "alpha starts", "c cancel", "q quit")) else None

        first = wait_until(shown, timeout=10, every=0.1, what=lambda: f"the dashboard to show up:\n{screen()}")
        assert "no tasks yet" not in first
        _tmux(sock, "send-keys", "-t", "dash", "q")
        wait_until(lambda: _tmux(sock, "has-session", "-t", "dash").returncode != 0, timeout=15, every=0.1,
                   what="q to exit")
        assert marker.read_text() == "stopped\n"
    finally:
        _tmux(sock, "kill-server")


if __name__ == "__main__":
    root = Path(sys.argv[1])

    def stop() -> None:
        (root / "stopped").write_text("stopped\n")

    run_dashboard(_source(root), stop=stop)
