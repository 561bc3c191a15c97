"""The `--container-engine` option of the commands that make images or sandboxes (run, shell, add,
layers build): the highest of the engine's sources (tsk/engine/choice.py); the Context checks it."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

EngineOpt = Annotated[str | None, Parameter(
    name="--container-engine",
    help="docker or podman (default: TSK_CONTAINER, then container_engine in the user's config, then docker).")]
