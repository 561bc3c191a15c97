"""The live view of `tsk server start` on a terminal: the task list on the left, the selected task's
log on the right, following new lines until the user scrolls back. Rendering only: everything it shows
comes from a TaskSource and everything it does goes through one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Log, Static

from tsk.agents.events import decode_event, render
from tsk.cli.render import duration
from tsk.errors import TskError
from tsk.queue.view import TaskRow, TaskSource
from tsk.text import printable

EMPTY = "no tasks yet — add one with `tsk add -p ...`"
COLUMNS = ("status", "id", "name", "agent", "host", "try", "duration", "branch")
STATUS_STYLE = {"QUEUED": "yellow", "WAITING": "blue", "RUNNING": "bold cyan", "BLOCKED": "bold yellow",
                "COMPLETE": "green",
                "FAILED": "bold red", "CANCELLED": "magenta"}
ENDED = frozenset({"COMPLETE", "FAILED", "CANCELLED"})
# A log can be long: the pane keeps the newest lines, and reads at most a chunk per refresh so the
# list stays responsive while a big log catches up.
MAX_LINES = 10_000
CHUNK = 1 << 20


def cells(row: TaskRow, now: float) -> tuple[str, ...]:
    """The row as the table shows it; the duration of a running task grows with `now`."""
    end = now if row.finished is None else row.finished
    took = "-" if row.started is None else duration(end - row.started)
    tries = f"{row.attempts}/{row.max_attempts}" if row.attempts else "-"
    return (row.status, row.id, row.name, row.agent, printable(row.host or "-"), tries, took, row.branch or "")


class LogTail:
    """Reads a JSON-lines log by offset, each call only what was appended since the last one. A line
    still being written waits for its newline; a log that starts big is shown from its last chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""

    def read(self) -> list[str]:
        lines: list[str] = []
        try:
            with self.path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # replaced or truncated: start over
                    self.offset, self._partial = 0, b""
                    lines.append("— log restarted —")
                skip = self.offset == 0 and size > CHUNK
                if skip:
                    self.offset = size - CHUNK
                    lines.append(f"… earlier lines are in {self.path}")
                f.seek(self.offset)
                data = f.read(CHUNK)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        if skip:  # the chunk starts mid-line
            data = data.partition(b"\n")[2]
        *complete, self._partial = (self._partial + data).split(b"\n")
        lines.extend(render(decode_event(line)) for line in complete if line.strip())
        return lines


class Confirm(ModalScreen[bool]):
    """One key to confirm (y), anything else to back out."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Static { width: auto; max-width: 80%; padding: 1 2; border: thick $warning; background: $surface; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.question}  [y/n]"))

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss(event.key == "y")


class Dashboard(App[None]):
    TITLE = "tsk server"
    CSS = """
    #left { width: 3fr; }
    #tasks { height: 1fr; border: round $primary; }
    #empty { padding: 1 2; color: $text-muted; }
    #log { width: 2fr; border: round $primary; }
    """
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "move(1)", "move", key_display="↑↓ j/k"),
        Binding("k", "move(-1)", "up", show=False),
        Binding("c", "cancel_task", "cancel"),
        Binding("d", "delete_task", "delete"),
        Binding("f", "follow", "follow log", key_display="f/End"),
        # priority: the focused table would otherwise take End for its own last row
        Binding("end", "follow", "follow log", show=False, priority=True),
        Binding("q", "quit", "quit"),
        # On a terminal Ctrl-C means "stop the server", as it does for every other tsk command.
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, source: TaskSource, *, stop: Callable[[], None], refresh: float = 0.5,
                 finished: Callable[[], bool] | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.source = source
        self._finished = finished
        self.refresh_every = refresh
        # Durations are measured on this clock (a test sets the time instead of sleeping).
        self.clock = clock
        # Counters of what has happened, so a caller can wait for "it had its chance" instead of for a time:
        # refreshes done (rows and the log read again), and questions answered (yes or no).
        self.refreshes = 0
        self.answers = 0
        self.following = True
        self._stop = stop
        self._stopped = False
        self._rows: dict[str, TaskRow] = {}
        self._shown: dict[str, tuple[str, ...]] = {}
        self._log_task: str | None = None
        self._tail: LogTail | None = None
        self._warned = ""
        # Held, not queried: a timer tick may land while a modal is on top or the app is closing.
        self.table: DataTable[str | Text] = DataTable(id="tasks", cursor_type="row")
        self.log_pane = Log(id="log", max_lines=MAX_LINES, auto_scroll=False)
        self.empty = Static(EMPTY, id="empty", markup=False)

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="left"):
                yield self.empty
                yield self.table
            yield self.log_pane
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        for name in COLUMNS:
            table.add_column(name, key=name)
        table.border_title = "tasks"
        self.watch(self.log_pane, "scroll_y", self._log_scrolled, init=False)
        self._set_following(True)
        self.tick()
        table.focus()
        self.set_interval(self.refresh_every, self.tick)

    def tick(self) -> None:
        # Once the app is closing its widgets may have no screen left (NoScreen): textual's shutdown
        # removes the screens first, and this can still be called then, by the refresh timer under
        # `run_test` (the app's timers stop last there) or by a cancel's worker thread finishing late.
        if not self.is_running:
            return
        if self._finished is not None and self._finished():
            self._stopped = True  # the server ended on its own: nothing to ask it
            self.exit()
            return
        self._load_rows()
        self._follow_log()
        self.refreshes += 1

    # the task list

    def _load_rows(self) -> None:
        try:
            rows = self.source.rows()
        except TskError as e:
            if str(e) != self._warned:  # once per distinct problem, not every refresh
                self._warned = str(e)
                self.notify(str(e), severity="error", markup=False)
            return
        table = self.table
        self.empty.display = not rows
        table.display = bool(rows)
        if rows and self.table.screen.focused is None:  # its own screen: a modal may be on top
            table.focus()
        self._rows = {r.id: r for r in rows}
        now = self.clock()
        fresh = {r.id: cells(r, now) for r in rows}
        if [k.value for k in table.rows] == list(fresh):
            for task_id, values in fresh.items():
                for column, old, new in zip(COLUMNS, self._shown[task_id], values, strict=True):
                    if old != new:
                        table.update_cell(task_id, column, self._cell(column, new), update_width=True)
        else:
            selected, index = self.selected_id(), table.cursor_row
            table.clear()
            for task_id, values in fresh.items():
                table.add_row(*(self._cell(c, v) for c, v in zip(COLUMNS, values, strict=True)), key=task_id)
            if rows:
                keys = list(fresh)
                table.move_cursor(row=keys.index(selected) if selected in fresh else min(index, len(keys) - 1),
                                  animate=False)
        self._shown = fresh
        active = sum(1 for r in rows if r.status.upper() not in ENDED)
        table.border_subtitle = f"{active} active · {len(rows) - active} ended"
        self._select_log()

    @staticmethod
    def _cell(column: str, value: str) -> str | Text:
        return Text(value, style=STATUS_STYLE.get(value.upper(), "")) if column == "status" else value

    def selected_id(self) -> str | None:
        table = self.table
        if not table.is_valid_row_index(table.cursor_row):
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def on_data_table_row_highlighted(self) -> None:
        # Read the cursor, not the event: a rebuild of the table posts highlights for rows it passes.
        self._select_log()
        self._follow_log()

    # the log pane

    def _select_log(self) -> None:
        task_id = self.selected_id()
        if task_id == self._log_task:
            return
        self._log_task = task_id
        log = self.log_pane
        log.clear()
        self._tail = LogTail(self.source.log_path(task_id)) if task_id else None
        row = self._rows.get(task_id or "")
        title = f"{row.id} · {row.name}" if row else ""
        if row is not None and row.attempts:
            title += f" · attempt {row.attempts}/{row.max_attempts}"
        if row is not None and row.why:
            title += f" · {printable(row.why)[:80]}"
        log.border_title = title
        self._set_following(True)

    def _follow_log(self) -> None:
        if self._tail is None:
            return
        lines = self._tail.read()
        if not lines:
            return
        log = self.log_pane
        log.write_lines(lines, scroll_end=False)
        if self.following:
            log.scroll_end(animate=False, x_axis=False)

    def _log_scrolled(self) -> None:
        # Scrolling back pauses following; reaching the end again (wheel, keys, End) resumes it.
        at_end = self.log_pane.is_vertical_scroll_end
        if at_end != self.following:
            self._set_following(at_end)

    def _set_following(self, on: bool) -> None:
        self.following = on
        self.log_pane.border_subtitle = "● following" if on else "‖ paused · End follows"

    # actions

    def action_move(self, delta: int) -> None:
        table = self.table
        table.move_cursor(row=table.cursor_row + delta)

    def action_follow(self) -> None:
        self._set_following(True)
        self.log_pane.scroll_end(animate=False, x_axis=False)

    def action_cancel_task(self) -> None:
        row = self._rows.get(self.selected_id() or "")
        if row is None:
            return
        if row.status.upper() in ENDED:
            self.notify(f"{row.id} has already ended ({row.status})", severity="warning", markup=False)
            return
        self._confirm(f"Cancel task {row.id} ({row.name})?", self.source.cancel, row.id, "cancelled")

    def action_delete_task(self) -> None:
        row = self._rows.get(self.selected_id() or "")
        if row is not None:
            self._confirm(f"Delete task {row.id} ({row.name}) and its directory?", self.source.delete, row.id,
                          "deleted")

    def _confirm(self, question: str, act: Callable[[str], None], task_id: str, done: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                # A thread: stopping a running task's container takes seconds, the view must not freeze.
                self.run_worker(lambda: self._act(act, task_id, done), thread=True)
            self.answers += 1

        self.push_screen(Confirm(question), answered)

    def _act(self, act: Callable[[str], None], task_id: str, done: str) -> None:
        try:
            act(task_id)
        except TskError as e:
            self.call_from_thread(self.notify, str(e), severity="error", markup=False)
            return
        self.call_from_thread(self.notify, f"{done} {task_id}", markup=False)
        self.call_from_thread(self.tick)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While a question is open, only its answer (and quitting) counts.
        return action == "quit" or not isinstance(self.screen, ModalScreen)

    async def action_quit(self) -> None:
        self.request_stop()
        self.exit()

    def request_stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._stop()


def run_dashboard(source: TaskSource, *, stop: Callable[[], None], refresh: float = 0.5,
                  finished: Callable[[], bool] | None = None) -> None:
    """Show the dashboard until the user quits (q, Ctrl-C) or `finished()` says the server ended on its
    own (`-q` with nothing left, `tsk server stop`, a signal); it is checked every refresh.

    `stop` asks the server to stop and should return promptly (the caller waits for its workers after
    this returns); it is called once when the user quits or the view fails, never after `finished()`.
    `source.cancel` and `source.delete` are called from a worker thread, the rest from this one."""
    app = Dashboard(source, stop=stop, refresh=refresh, finished=finished)
    try:
        app.run()
    finally:
        app.request_stop()
