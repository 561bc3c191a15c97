"""`tsk proxy stop`: stop the egress proxies this user's tasks started that no task goes out through now
(upstream's command). A proxy stops by itself once idle (TSK_PROXY_IDLE_SECONDS, default 15 min);
this is for now. A proxy a running task uses is left alone and named."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from tsk.cli.engine_opt import EngineOpt
from tsk.cli.render import emit_json


def stop(*, container_engine: EngineOpt = None,
         json: Annotated[bool, Parameter(negative=(), help="Print JSON for scripts.")] = False) -> int:
    """Stop every egress proxy your tasks started that no task uses now; one a task uses stays."""
    from tsk.context import Context
    from tsk.sandbox.proxy import in_use, reap_idle

    ctx = Context(container_engine=container_engine)
    engine = ctx.engine
    stopped = reap_idle(engine, ctx.paths.runtime, idle_seconds=-1.0)
    busy = in_use(engine, ctx.paths.runtime)
    if json:
        emit_json({"stopped": stopped, "in_use": busy})
        return 0
    print(f"tsk: stopped {len(stopped)} proxy container(s)" + (f": {', '.join(stopped)}" if stopped else ""))
    if busy:
        print(f"tsk: {len(busy)} still in use by running tasks: {', '.join(busy)}")
    return 0
