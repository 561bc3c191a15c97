"""`tsk trust` and `tsk untrust`: let a repository's own .tsk/tsk.toml widen the sandbox, or stop it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from tsk.cli.render import emit_json
from tsk.context import Context

Repo = Annotated[str | None, Parameter(help="The repository (default: the current one).")]
Json = Annotated[bool, Parameter(negative=(), help="Print JSON for scripts.")]


def _state(ctx: Context, repo: str | None):  # type: ignore[no-untyped-def]
    from tsk.config import load_project_file, load_user_file, project_name
    from tsk.config.load import project_file_path
    from tsk.config.trust import state

    top = ctx.find_repo(Path(repo).expanduser() if repo else None)
    project = load_project_file(top)
    return state(top, project_file_path(top), project, load_user_file(ctx.paths.config_file), project_name(top),
                 ctx.paths.data), project


def trust(*, repo: Repo = None, show: Annotated[bool, Parameter(negative=(), help=(
        "Print what would be trusted (the keys that widen the sandbox, with their values); change nothing."))] = False,
          json: Json = False) -> int:
    """Trust this repository's .tsk/tsk.toml as it is now, so its keys that widen the sandbox take effect.

    Keys such as host volumes, devices, privileged, sudo, env, host_ports, a squid.conf, config-defined
    agents and the [layers] registry, base image and CAs apply only to a trusted file; any change to
    the file (or to a file it names) needs `tsk trust` again."""
    from tsk.config.trust import show_values
    from tsk.config.trust import trust as record

    ctx = Context()
    st, project = _state(ctx, repo)
    if show:
        if json:
            emit_json({**_as_dict(st), "values": show_values(project, st.keys)})
            return 0
        print(f"{st.path}: " + ("trusted" if st.trusted else "changed since trusted" if st.trusted_before
                                else "not trusted"))
        if not st.keys:
            print("  nothing in it widens the sandbox; it applies without trust")
        for key, value in show_values(project, st.keys).items():
            print(f"  {key} = {value!r}")
        return 0
    record(st, ctx.paths.data)
    if json:
        emit_json({**_as_dict(st), "trusted": True})
    else:
        what = ", ".join(st.keys) if st.keys else "nothing that needs trust"
        print(f"tsk: trusted {st.path} ({what}); a change to it needs `tsk trust` again")
    return 0


def untrust(*, repo: Repo = None) -> int:
    """Forget the trust given to this repository's .tsk/tsk.toml; its widening keys are refused again."""
    from tsk.config.trust import untrust as forget

    ctx = Context()
    top = ctx.find_repo(Path(repo).expanduser() if repo else None)
    if forget(top, ctx.paths.data):
        print(f"tsk: {top} is no longer trusted")
    else:
        print(f"tsk: {top} was not trusted")
    return 0


def _as_dict(st: object) -> dict[str, object]:
    import msgspec

    out: dict[str, object] = msgspec.to_builtins(st)
    return out
