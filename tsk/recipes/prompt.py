"""Where a task's prompt comes from (-p, --prompt-file, or piped stdin) and `-e/--edit`.

stdin is read only when it is a pipe or a file, never a terminal: no tsk command may sit waiting for
typing the user does not know is expected."""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from tsk.errors import TskError, UsageError

OpenEditor = Callable[[list[str]], int]


def _read_stdin(stdin: TextIO | None) -> str | None:
    if stdin is None or stdin.closed:
        return None
    try:
        return stdin.read()
    except ValueError:  # closed underneath us (a detached or already-consumed stream)
        return None
    except UnicodeDecodeError as exc:
        raise UsageError(f"the prompt on stdin is not valid text: {exc}", hint="pipe UTF-8 text") from exc


def _clean(text: str | None) -> str | None:
    # An empty prompt (`-p ""`, an empty pipe such as `< /dev/null`) is no prompt.
    if text is None or not text.strip():
        return None
    return text.strip()


def read_prompt(prompt: str | None, prompt_file: str | None, stdin: TextIO | None, stdin_is_tty: bool) -> str | None:
    """The prompt from -p, --prompt-file (`-` is stdin), or stdin when it is piped; None when none."""
    if prompt is not None and prompt_file is not None:
        raise UsageError("-p/--prompt and --prompt-file both given; pass the prompt one way",
                         hint="drop one of the two flags")
    if prompt is not None:
        return _clean(prompt)
    if prompt_file == "-":
        if stdin_is_tty:
            raise UsageError("--prompt-file - reads the prompt from stdin, but stdin is a terminal",
                             hint="pipe it in (`echo TEXT | tsk ... --prompt-file -`), or pass -p TEXT")
        return _clean(_read_stdin(stdin))
    if prompt_file is not None:
        path = Path(prompt_file).expanduser()
        try:
            return _clean(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise UsageError(f"prompt file {prompt_file} does not exist",
                             hint="check the path given to --prompt-file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read prompt file {prompt_file}: {exc}",
                             hint="--prompt-file takes a readable UTF-8 text file, or `-` for stdin") from exc
    if stdin_is_tty:
        return None
    return _clean(_read_stdin(stdin))


def editor_from_env(environ: Mapping[str, str]) -> str | None:
    # VISUAL before EDITOR, as git and most Unix tools do.
    return environ.get("VISUAL") or environ.get("EDITOR") or None


def editor_command(editor: str | None) -> list[str]:
    """The editor's argv: `$EDITOR` may carry arguments (`code --wait`); `vi` when unset."""
    try:
        argv = shlex.split(editor or "")
    except ValueError as exc:
        raise UsageError(f"cannot read the editor command `{editor}`: {exc}",
                         hint="fix the quoting in $EDITOR (or $VISUAL)") from exc
    return argv or ["vi"]


def _default_open_editor(argv: list[str]) -> int:
    from tsk.engine.proc import interactive

    return interactive(argv)


def edit_instructions(text: str, editor: str | None, is_tty: bool, *, open_editor: OpenEditor | None = None) -> str:
    """Let the user edit the rendered instructions before the task is created (`-e/--edit`)."""
    if not is_tty:
        raise UsageError("--edit needs a terminal to run the editor in",
                         hint="drop -e/--edit, or run the command in a terminal")
    opener = open_editor or _default_open_editor
    argv = editor_command(editor)
    fd, name = tempfile.mkstemp(prefix="tsk-instructions-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        code = opener([*argv, name])
        if code != 0:
            raise TskError(f"the editor `{' '.join(argv)}` exited with code {code}; nothing was created",
                           hint="save and quit normally to go on (in vi, `:wq`)")
        edited = Path(name).read_text(encoding="utf-8")
    finally:
        Path(name).unlink(missing_ok=True)
    if not edited.strip():
        raise TskError("the instructions are empty after editing; nothing was created",
                       hint="leave some instructions in the file to create the task")
    return edited
