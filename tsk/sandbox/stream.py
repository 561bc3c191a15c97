"""The agent's output as it streams out of the container: cut into lines, written to the task's logs,
kept for the verdict. Everything here is bounded, because the sandbox decides how much it prints: one
line is at most LINE_MAX bytes (a flood without a newline must not grow tsk's memory), each log stops
growing at LOG_MAX bytes (with a note saying so), and only the events the verdict needs are kept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from tsk.agents.events import Event, Final, Message, Session, decode_event, encode_event, render
from tsk.files import read_tail

LINE_MAX = 1 << 20
LOG_MAX = 256 << 20
KEEP = 1000  # events kept besides every Final: the verdict reads the last ones


class CappedLog:
    """An append-only log that stops at `limit` bytes, leaving one line that says where it stopped."""

    def __init__(self, f: BinaryIO, limit: int = LOG_MAX, *, note: bytes | None = None) -> None:
        self.f, self.limit, self.written, self.full = f, limit, 0, False
        self.note = note

    def write(self, data: bytes) -> None:
        if self.full:
            return
        if self.written + len(data) > self.limit:
            self.full = True
            if self.note is not None:
                self.f.write(self.note)
            self.f.flush()
            return
        self.f.write(data)
        self.f.flush()
        self.written += len(data)


def lines(chunks: Iterable[bytes], raw: CappedLog, line_max: int = LINE_MAX) -> Iterator[str]:
    """The output's lines, decoded; a line longer than `line_max` is cut there and the rest of it skipped.
    Blank lines at the very end are dropped: the sandbox prints one after the agent (see plan.run_script)."""
    buf = b""
    skipping = False
    blanks = 0  # blank lines held back until a line follows them
    for chunk in chunks:
        raw.write(chunk)
        buf += chunk
        while True:
            cut = buf.find(b"\n")
            if cut < 0:
                if len(buf) > line_max:
                    if not skipping:
                        yield from [""] * blanks
                        blanks = 0
                        yield buf[:line_max].decode(errors="replace") + " … (line cut by tsk)"
                    skipping, buf = True, b""
                break
            line, buf = buf[:cut], buf[cut + 1:]
            if skipping:
                skipping = False
                continue
            if not line.strip(b"\r"):
                blanks += 1
                continue
            yield from [""] * blanks
            blanks = 0
            yield line[:line_max].decode(errors="replace")
    if buf.strip(b"\r") and not skipping:
        yield from [""] * blanks
        yield buf[:line_max].decode(errors="replace")


class Kept:
    """The events of a run as the verdict needs them: every Final and Session (a stopped agent has no
    Final, and its session is what the next attempt resumes), and the last KEEP others in order."""

    def __init__(self, keep: int = KEEP) -> None:
        self.events: list[Event] = []
        self.keep = keep
        self._others = 0

    def add(self, event: Event) -> None:
        self.events.append(event)
        if not isinstance(event, Final | Session):
            self._others += 1
            if self._others > 2 * self.keep:
                self._compact()

    def _compact(self) -> None:
        drop = self._others - self.keep
        out: list[Event] = []
        for e in self.events:
            if drop and not isinstance(e, Final | Session):
                drop -= 1
                continue
            out.append(e)
        self.events, self._others = out, self.keep


def log_tail(path: Path, n: int) -> list[str]:
    """The last `n` events of an agent.log, rendered; a torn last line (the task is writing) shown raw."""
    data = read_tail(path, 64 << 10)
    if not data:
        return []
    lines = data.splitlines()
    if len(data) == 64 << 10:
        lines = lines[1:]  # the cut fell inside a line
    return [render(decode_event(line)) for line in lines[-n:] if line.strip()]


def log_note(text: str) -> bytes:
    return encode_event(Message(f"tsk: {text}", role="warning")) + b"\n"
