"""What the host does with what the sandbox wrote, without an engine: reads that never follow a link,
block on a FIFO or read without end; text stripped of escape sequences; task git dirs holding anything
but files and dirs refused; bounded lines, logs and kept events; no setuid bit surviving."""

from __future__ import annotations

import io
import os
import stat
import threading
from pathlib import Path

import pytest

from tsk.agents.events import Final, Message, Raw, render
from tsk.files import clear_special_bits, read_bounded, write_private
from tsk.sandbox.stream import CappedLog, Kept, lines
from tsk.snapshot.gitdir import TaskGitDirError, check_shape
from tsk.text import printable


def test_read_bounded_refuses_links_fifos_devices_and_stops_at_its_limit(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("host secret\n")
    (tmp_path / "link").symlink_to(canary)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    (tmp_path / "dev").symlink_to("/dev/zero")
    done = threading.Event()

    def reads() -> None:
        assert read_bounded(tmp_path / "link", 100) is None
        assert read_bounded(tmp_path / "fifo", 100) is None  # opens at once (O_NONBLOCK), refused as not a file
        assert read_bounded(tmp_path / "dev", 100) is None
        assert read_bounded(Path("/dev/zero"), 100) is None
        assert read_bounded(tmp_path / "missing", 100) is None
        assert read_bounded(tmp_path / "big", 1000) == b"x" * 1000
        done.set()

    t = threading.Thread(target=reads, daemon=True)
    t.start()
    t.join(10)
    assert done.is_set(), "a read blocked"


def test_write_private_is_0600_atomic_and_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("keep me\n")
    target = tmp_path / "creds.json"
    target.symlink_to(canary)
    write_private(target, b"secret")
    assert canary.read_text() == "keep me\n"
    assert not target.is_symlink() and target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_printable_strips_escape_sequences_and_bidi_overrides() -> None:
    evil = "ok\x1b]0;pwned\x07 \x1b[2J\x9b31m\u202eevil\r\x00done\tend\n"
    assert printable(evil) == "ok]0;pwned [2J31mevildone\tend\n"
    for event in (Message(evil), Message(evil, role="output"), Raw(evil), Final(success=False, error=evil)):
        shown = render(event)
        assert not any(c in shown for c in "\x1b\x07\x9b\u202e\r\x00\n"), (event, shown)


def test_a_task_git_dir_with_a_link_or_fifo_is_refused(tmp_path: Path) -> None:
    gd = tmp_path / "git"
    (gd / "refs" / "heads").mkdir(parents=True)
    (gd / "HEAD").write_text("ref: refs/heads/x\n")
    check_shape(gd)
    (gd / "refs" / "heads" / "x").symlink_to("/etc/passwd")
    with pytest.raises(TaskGitDirError, match="refs/heads/x is a symlink"):
        check_shape(gd)
    (gd / "refs" / "heads" / "x").unlink()
    os.mkfifo(gd / "packed-refs")
    with pytest.raises(TaskGitDirError, match="packed-refs is a FIFO"):
        check_shape(gd)


def test_lines_are_cut_at_the_limit_and_logs_stop_at_theirs() -> None:
    raw = io.BytesIO()
    log = CappedLog(raw, limit=64, note=b"[stop]\n")
    out = list(lines([b"short\nx" * 1, b"y" * 50, b"z" * 50, b"\nafter\n"], log, line_max=20))
    assert out[0] == "short"
    assert out[1].startswith("x" + "y" * 19) and out[1].endswith("(line cut by tsk)")
    assert out[2:] == ["after"]  # the rest of the long line was skipped, the next one is whole
    assert raw.getvalue().endswith(b"[stop]\n") and len(raw.getvalue()) <= 64 + len(b"[stop]\n")


def test_blank_lines_are_kept_between_lines_and_dropped_at_the_end() -> None:
    # the sandbox ends the agent's output with a newline of its own (an unterminated last line is
    # lost by the engine's log otherwise): it must neither show as output nor cost a real last line
    log = CappedLog(io.BytesIO())
    assert list(lines([b"a\n\n", b"\nb\n\n"], log)) == ["a", "", "", "b"]
    assert list(lines([b'{"type":"result"}', b"\n"], log)) == ['{"type":"result"}']
    assert list(lines([b"last", b""], log)) == ["last"]


def test_kept_events_keep_every_final_and_the_last_others_in_order() -> None:
    kept = Kept(keep=10)
    for i in range(1000):
        kept.add(Message(f"m{i}"))
        if i in (5, 500):
            kept.add(Final(success=i == 500, summary=f"f{i}"))
    finals = [e for e in kept.events if isinstance(e, Final)]
    assert [f.summary for f in finals] == ["f5", "f500"]
    messages = [e.text for e in kept.events if isinstance(e, Message)]
    assert messages[-1] == "m999" and len(messages) <= 20


def test_no_setuid_or_setgid_bit_survives(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "sh"
    f.write_text("#!/bin/sh\n")
    os.chmod(f, 0o6755)
    os.chmod(tmp_path / "d", 0o2775)
    (tmp_path / "d" / "link").symlink_to("/usr/bin/passwd")  # not followed, not changed
    clear_special_bits(tmp_path)
    assert stat.S_IMODE(f.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o775


def test_the_watcher_stops_the_container_when_the_sandbox_writes_past_its_disk_limit(tmp_path: Path) -> None:
    import time

    from fakes import FakeEngine

    from tsk.sandbox.supervise import Watcher, disk_check, used_bytes

    (tmp_path / "upper").mkdir()
    (tmp_path / "upper" / "big").write_bytes(b"x" * (3 << 20))
    with (tmp_path / "upper" / "sparse").open("wb") as f:
        f.truncate(1 << 30)  # counts as what it holds on disk, not as 1 GiB
    assert (3 << 20) <= used_bytes([tmp_path / "upper"]) < (4 << 20)
    eng = FakeEngine()
    eng.add_container("tsk-task-x", labels={}, status="running")
    fine = disk_check([tmp_path / "upper"], 8 << 20, tmp_path)
    over = disk_check([tmp_path / "upper"], 1 << 20, tmp_path)
    stop = over()
    assert fine() is None and stop is not None and stop.failure_class == "agent_error"
    assert "over its disk_gb limit" in stop.reason
    with Watcher(eng, "tsk-task-x", [fine, over], every=0.05) as watcher:
        deadline = time.monotonic() + 10
        while watcher.reason is None and time.monotonic() < deadline:
            time.sleep(0.02)
    assert watcher.reason is not None and eng.stopped == ["tsk-task-x"]
