"""The console script, and the launcher that makes a warm `tsk run` start in a few milliseconds.

Importing tsk's command line, the docker SDK and the rest costs ~170 ms of CPU per process (measured
with -X importtime), about as long as the engine needs to start a container. So tsk keeps one
launcher per user and per version of its code: a Python process that has imported all of that once
and then forks a child per command. The command's process (this module's `main`, importing almost
nothing) sends its argv, working dir, environment, umask and its stdin/stdout/stderr (as file
descriptors) over a unix socket; the forked child takes them on and runs the command exactly as
`tsk.cli.main.run` would in-process; its exit code comes back the same way. Signals sent to the
command's process (Ctrl-C, SIGTERM, SIGHUP, Ctrl-Z) are passed on to the child, one that comes
before the child's pid is known as soon as it is, and the child dies with the command's process, so
the command behaves like a plain process. Help for any command, `tsk layers …` and
`tsk template list|show` are forked too.

When no launcher answers, the command runs in-process as before and starts a launcher for the next
one. Interactive commands (`shell`, `server`, `template edit`, an editor) always run in-process.
`TSK_LAUNCHER=0` turns the launcher off; it exits after `TSK_LAUNCHER_IDLE_SECONDS` (600) without a
command, and a change of tsk's code or of the installed packages gets a new launcher (the socket's
name carries a digest of both)."""

from __future__ import annotations

import contextlib
import io
import marshal
import os
import signal
import socket
import sys

# Commands whose process is quick and plain: no terminal handling of their own (the dashboard, a
# shell, an editor) and no long life of their own (a server). A live build display is fine: it only
# writes to the terminal, which the child gets as its stdout and stderr.
FORKED_COMMANDS = frozenset({"run", "add", "list", "wait", "cancel", "retry", "delete", "clean", "help",
                             "completion"})
FORKED_SUBCOMMANDS = {
    "layers": frozenset({"build", "ls", "why", "prune", "push", "pull", "lock"}),
    "docker": frozenset({"build"}),
    "template": frozenset({"list", "show"}),  # not `edit`: it runs $EDITOR
    "plan": frozenset({"apply", "list", "show", "cancel", "export"}),
}
EDIT_FLAGS = frozenset({"-e", "--edit"})
HELP_FLAGS = frozenset({"--help", "-h"})  # cyclopts' own; help only prints, for any command
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
NO_LAUNCHER = "no launcher"  # _via_launcher's answers when nothing was forked: none listens,
DECLINED = "declined"  # or it asked this caller to run the command itself


def main() -> None:
    argv = sys.argv[1:]
    if _forkable(argv) and os.environ.get("TSK_LAUNCHER", "1") != "0":
        where = _launcher_dir()
        if where is not None:
            code = _via_launcher(where, argv)
            if isinstance(code, int):
                os._exit(code)
            if code is NO_LAUNCHER:
                _start_launcher(where)  # for the next command; a launcher that declined this one runs already
    from tsk.cli.main import main as in_process

    in_process()


def _forkable(argv: list[str]) -> bool:
    """Whether the command line asks for a quick, plain command (or only for help)."""
    if EDIT_FLAGS & set(argv):
        return False
    options = argv[:argv.index("--")] if "--" in argv else argv  # after `--`, a flag is an argument
    if HELP_FLAGS & set(options) or not argv or (argv[0] in FORKED_SUBCOMMANDS and len(argv) == 1):
        return True  # help: `tsk` and a bare group print it too
    if argv[0] in FORKED_COMMANDS:
        return True
    return len(argv) > 1 and argv[1] in FORKED_SUBCOMMANDS.get(argv[0], ())


# -- where the launcher listens ---------------------------------------------------------------------


def _launcher_dir() -> str | None:
    """A dir only this user can use (the socket carries the user's environment); None when the
    place is not safe to use, and then tsk runs in-process."""
    named = os.environ.get("TSK_LAUNCHER_DIR")
    base = named or os.path.join(os.environ.get("XDG_RUNTIME_DIR") or "/tmp", f"tsk-launcher-{os.getuid()}")
    from tsk.files import owned_private_dir

    return base if owned_private_dir(base, close=not named) else None  # the user's own dir is not chmod-ed


def code_digest(root: str | None = None) -> str:
    """Names the launcher for this code: tsk's sources (path, size, mtime), the interpreter and the
    installed packages' dirs. Costs a stat per source file (~1 ms)."""
    import hashlib

    if root is None:
        import tsk

        root = os.path.dirname(os.path.abspath(tsk.__file__))
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{sys.executable}\0{sys.version}\0{root}\0".encode())
    for p in sys.path:
        if p.endswith("-packages") and os.path.isdir(p):
            h.update(f"{p}:{os.stat(p).st_mtime_ns}\0".encode())
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(dirpath, name))
                h.update(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _paths(where: str, digest: str) -> tuple[str, str]:
    return os.path.join(where, f"{digest}.sock"), os.path.join(where, f"{digest}.lock")


# -- the command's side ----------------------------------------------------------------------------


def _via_launcher(where: str, argv: list[str]) -> int | str:
    """Run the command in a child of the launcher; its exit code, or NO_LAUNCHER / DECLINED when no
    launcher forked one (nothing ran: the command runs in-process)."""
    relay = _Relay()  # before anything is sent: a signal from now on waits for the child, or for None
    conn = _send_request(where, argv)
    reader = conn.makefile("rb") if conn is not None else None
    first = _read_line(reader) if reader is not None else []
    if first[:1] != [b"pid"] or len(first) != 2:
        if conn is not None:
            conn.close()
        relay.never_started()
        return DECLINED if first == [b"in-process"] else NO_LAUNCHER
    relay.started(int(first[1]))
    assert reader is not None
    last = _read_line(reader)
    if last[:1] == [b"exit"]:
        return int(last[1])
    print("tsk: the command's process ended without an exit code (killed?)", file=sys.stderr)
    return 1


def _send_request(where: str, argv: list[str]) -> socket.socket | None:
    sock_path, _ = _paths(where, code_digest())
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(sock_path)
        # marshal, not json: both ends are the same interpreter (the socket's name says so), and
        # json's import (with re) is ~5 ms of every command
        request = marshal.dumps((argv, os.getcwd(), dict(os.environ), _umask()))
        socket.send_fds(conn, [len(request).to_bytes(8, "big")], [0, 1, 2])
        conn.sendall(request)
    except OSError:
        conn.close()
        return None
    return conn


def _read_line(reader: io.BufferedReader) -> list[bytes]:
    try:
        return list(reader.readline().split())
    except OSError:
        return []


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _Relay:
    """Passes the signals the command's process gets on to the forked child (Ctrl-C, SIGTERM, SIGHUP,
    Ctrl-Z and `fg`). In place before the request is sent: a signal that comes while the child's pid
    is not known yet waits for it, and reaches the child the moment it is."""

    def __init__(self) -> None:
        self.child: int | None = None
        self.pending: list[int] = []
        mine = (*FORWARDED, signal.SIGTSTP, signal.SIGCONT)
        # an ignored signal (`nohup`, `&` in a script) stays ignored, as it would in-process
        self.previous = {sig: signal.getsignal(sig) for sig in mine if signal.getsignal(sig) != signal.SIG_IGN}
        for sig in self.previous:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.child is None:
            self.pending.append(signum)
        else:
            self._deliver(self.child, signum)

    def _deliver(self, child: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if signum == signal.SIGTSTP:  # Ctrl-Z: stop both; `fg` continues both
                os.kill(child, signal.SIGSTOP)
                signal.signal(signal.SIGTSTP, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTSTP)
            elif signum == signal.SIGCONT:
                signal.signal(signal.SIGTSTP, self._on_signal)
                os.kill(child, signal.SIGCONT)
            else:
                os.kill(child, signum)

    def started(self, child: int) -> None:
        self.child = child
        while self.pending:
            self._deliver(child, self.pending.pop(0))

    def never_started(self) -> None:
        """No child ran: the process's own handling comes back, and a signal that came meanwhile
        does what it does to a command run in-process (Ctrl-C: `tsk: interrupted`, exit 130)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in self.pending:
            if signum == signal.SIGINT:
                from tsk.cli.main import flush_stdio, interrupted

                code = interrupted()
                flush_stdio()
                os._exit(code)
            if signum != signal.SIGCONT:
                os.kill(os.getpid(), signum)
        self.pending.clear()


def _start_launcher(where: str) -> None:
    from tsk.engine.proc import spawn_detached

    spawn_detached([sys.executable, "-m", "tsk.launcher", where], cwd="/")


def stop_launchers(where: str) -> None:
    """Stop every launcher listening in `where` (each lock file holds its launcher's pid)."""
    import fcntl

    for name in os.listdir(where):
        if name.endswith(".lock"):
            with contextlib.suppress(ValueError, OSError, IndexError), open(os.path.join(where, name)) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:  # a live launcher holds it: the pid is that launcher's
                    os.kill(int(f.read().split()[0]), signal.SIGTERM)
                # else the launcher is gone, and its pid may be another process's by now


# -- the launcher's side ---------------------------------------------------------------------------


def serve(where: str) -> None:
    """The launcher: import what commands use, then fork a child per connection until idle."""
    import fcntl

    digest = code_digest()
    sock_path, lock_path = _paths(where, digest)
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another launcher for this code runs (or is starting)
    os.ftruncate(lock, 0)  # at once: while the lock is held, the pid in it is the holder's (stop_launchers)
    os.write(lock, f"{os.getpid()}\n".encode())
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # `-m` put the launcher's working dir first; a command's imports must not see it
    _preload()
    idle = float(os.environ.get("TSK_LAUNCHER_IDLE_SECONDS", "600"))
    if os.path.exists(sock_path):
        os.unlink(sock_path)  # a dead launcher's: we hold the lock, so no live one uses it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    bound = os.stat(sock_path).st_ino
    listener.listen(64)
    listener.settimeout(idle)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children report their exit code themselves
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `finally` below removes the socket
    mine = confinement(os.getpid())
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return
            _fork_command(listener, lock, conn, mine)
    finally:
        with contextlib.suppress(OSError):
            if os.stat(sock_path).st_ino == bound:
                os.unlink(sock_path)


CONFINEMENT_NS = ("mnt", "pid", "net", "user", "uts", "ipc", "cgroup")


def confinement(pid: int) -> tuple[str, ...] | None:
    """What a process is confined by: its namespaces, NoNewPrivs and seccomp mode; None if unreadable."""
    try:
        spaces = [os.readlink(f"/proc/{pid}/ns/{n}") for n in CONFINEMENT_NS]
        with open(f"/proc/{pid}/status") as f:
            flags = [line.strip() for line in f if line.startswith(("NoNewPrivs:", "Seccomp:"))]
    except OSError:
        return None
    return (*spaces, *flags)


def peer_verdict(conn: socket.socket, mine: tuple[str, ...] | None) -> str:
    """"ok" to fork for this caller; "refuse" another user (who must never get this user's process);
    "in-process" a caller confined otherwise than the launcher (another container or sandbox sharing
    the socket, a process under no-new-privileges or seccomp): it must not escape into an unconfined
    child, so it runs the command itself."""
    import struct

    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    if uid != os.getuid():
        return "refuse"
    theirs = confinement(pid)
    return "ok" if theirs is not None and theirs == mine else "in-process"


def _fork_command(listener: socket.socket, lock: int, conn: socket.socket,
                  mine: tuple[str, ...] | None = None) -> None:
    conn.settimeout(10)
    try:
        verdict = peer_verdict(conn, mine)
    except OSError:
        verdict = "refuse"
    if verdict != "ok":
        with contextlib.suppress(OSError):
            if verdict == "in-process":
                conn.sendall(b"in-process\n")
        conn.close()
        return
    fds: list[int] = []
    try:
        header, fds, _flags, _addr = socket.recv_fds(conn, 8, 3)
        if len(header) != 8 or len(fds) != 3:
            raise OSError("incomplete request")
        size = int.from_bytes(header, "big")
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise OSError("incomplete request")
            data += chunk
        request = _decode_request(data)
    except (OSError, ValueError, EOFError, TypeError):
        conn.close()
        for fd in fds:  # a malformed request keeps nothing of the caller's open here
            os.close(fd)
        return
    pid = os.fork()
    if pid == 0:
        listener.close()
        os.close(lock)  # the launcher's lock dies with the launcher, not with its longest command
        conn.settimeout(None)
        try:
            _run_child(conn, fds, request)
        finally:
            os._exit(1)  # never back into the launcher's loop; _run_child ends the process itself
    conn.close()
    for fd in fds:
        os.close(fd)


Request = tuple[list[str], str, dict[str, str], int]  # argv, working dir, environment, umask


def _decode_request(data: bytes) -> Request:
    argv, cwd, env, umask = marshal.loads(data)
    if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv) and isinstance(cwd, str)
            and isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
            and isinstance(umask, int)):
        raise ValueError("malformed request")
    return argv, cwd, env, umask


def _run_child(conn: socket.socket, fds: list[int], request: Request) -> None:
    """In the forked child: become the command's process, run the command, report its exit code."""
    import threading
    import time

    from tsk.cli.main import flush_stdio, interrupted, run

    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP, signal.SIGCONT):
            signal.signal(sig, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        argv, cwd, env, umask = request
        os.chdir(cwd)
        os.umask(umask)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["tsk", *argv]
        _reopen_stdio()
        hold = os.environ.get("TSK_LAUNCHER_TEST_HOLD_SECONDS")
        if hold:  # only tests set it: the command's process waits for the pid this long (test_launcher.py)
            print(f"tsk: debug: command process {os.getpid()} holds its pid back", file=sys.stderr, flush=True)
            time.sleep(float(hold))
        conn.sendall(f"pid {os.getpid()}\n".encode())
        if os.environ.get("TSK_DEBUG", "") not in ("", "0"):
            print(f"tsk: debug: command process {os.getpid()}, forked by the launcher {os.getppid()}",
                  file=sys.stderr)

        def die_with_the_command() -> None:  # its process is gone (kill -9): so is this one, as in-process
            with contextlib.suppress(OSError):
                conn.recv(1)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=die_with_the_command, name="tsk-command-watch", daemon=True).start()
        code = run(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:  # forwarded as soon as the pid was sent, before `run` guards the command
        code = interrupted()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command is over: report its code, whatever comes
        flush_stdio()
        with contextlib.suppress(OSError):
            conn.sendall(f"exit {code}\n".encode())
        os._exit(code)


def _reopen_stdio() -> None:
    """The stdio objects a fresh interpreter would make for these descriptors (line-buffered stdout
    on a terminal, block-buffered otherwise; stderr always line-buffered)."""
    enc = "utf-8"
    sys.stdin = open(0, encoding=enc, closefd=False)  # noqa: SIM115 - stdio lives as long as the process
    sys.stdout = open(1, "w", encoding=enc, closefd=False, buffering=-1 if not os.isatty(1) else 1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding=enc, errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115


# What commands import, imported once by the launcher instead of in every command's process
# (tests/test_launcher.py imports each, so a renamed module cannot drop out of this list unseen).
PRELOAD = (
    "tsk.cli.main", "tsk.cli.app", "tsk.cli.run", "tsk.cli.queue", "tsk.cli.listing", "tsk.cli.render",
    "tsk.cli.layers", "tsk.cli.layers_remote", "tsk.cli.template", "tsk.cli.progress",
    "tsk.engine.docker_api", "tsk.engine.podman_api", "tsk.engine.registry", "tsk.sandbox.runner",
    "tsk.sandbox.provision", "tsk.snapshot.take",
    "tsk.snapshot.fetch", "tsk.layers.service", "tsk.layers.store", "tsk.layers.listing", "tsk.layers.why",
    "tsk.queue.db", "tsk.recipes.render", "tsk.recipes.store", "tsk.recipes.prompt", "tsk.config.schema",
    "tsk.config.load", "filelock", "diskcache", "sqlite3",
    # what cyclopts and rich import only once they print help or a table
    "cyclopts.help", "cyclopts.config", "docstring_parser", "rich.console", "rich.table",
    "rich.panel",
)


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # the command imports what it needs itself (and a test names the module)
            continue


if __name__ == "__main__":
    serve(sys.argv[1])
