"""`tsk help CMD` (upstream's spelling of `tsk CMD --help`) and `tsk completion SHELL`."""

from __future__ import annotations

from typing import Annotated, Literal

from cyclopts import Parameter

from tsk.errors import UsageError

Shell = Annotated[Literal["bash", "zsh", "fish"], Parameter(help="The shell to complete tsk's commands in.")]


def help_(*command: str) -> int:
    """Show a command's help: `tsk help layers build` is `tsk layers build --help`."""
    from tsk.cli.app import app

    here = app
    for i, word in enumerate(command):
        if word not in here:
            where = " ".join(("tsk", *command[:i]))
            raise UsageError(f"`{where}` has no command `{word}`", hint=f"`{where} --help` lists its commands")
        here = here[word]
    app.help_print(list(command))
    return 0


def completion(shell: Shell) -> int:
    """Print tsk's completion script for bash, zsh or fish.

    bash: `tsk completion bash > ~/.local/share/bash-completion/completions/tsk`; zsh: write it as `_tsk` in a
    dir on $fpath; fish: `tsk completion fish > ~/.config/fish/completions/tsk.fish`."""
    from tsk.cli.app import app

    print(app.generate_completion(prog_name="tsk", shell=shell), end="")
    return 0
