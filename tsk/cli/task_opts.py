"""Options that run, shell, add and retry share beyond tsk/cli/run.py's: the sandbox's extra powers
(`--dind`, `--device`) and upstream's older spelling of the prompt (`-d/--description`, hidden)."""

from __future__ import annotations

import sys
from typing import Annotated

from cyclopts import Parameter

from tsk.errors import UsageError

DindOpt = Annotated[bool, Parameter(negative=(), help=(
    "Let the sandbox build and run containers (Docker-in-Docker: loosens its isolation), as `dind = true` does."))]
DeviceOpt = Annotated[list[str] | None, Parameter(name="--device", help=(
    "A host device for the sandbox, e.g. /dev/fuse; a glob such as '/dev/dri/*' is expanded on the host; "
    "repeat for several."))]
# Upstream's `-d/--description` before it became `-p/--prompt`: still accepted, not shown.
DescriptionOpt = Annotated[str | None, Parameter(name=["--description", "-d"], show=False,
                                                 help="The old spelling of -p/--prompt.")]


def prompt_of(prompt: str | None, description: str | None) -> str | None:
    """-p, or upstream's -d with a one-line warning naming the new form; both at once is a usage error."""
    if description is None:
        return prompt
    if prompt is not None:
        raise UsageError("-p/--prompt and -d/--description both given; -d is the old spelling of -p",
                         hint="pass the prompt once, with -p")
    print("tsk: warning: -d/--description is the old spelling of -p/--prompt; use -p", file=sys.stderr)
    return description


def devices_of(device: list[str] | None) -> tuple[str, ...]:
    from tsk.config.devices import expand_devices

    return expand_devices(device or ())
