"""`tsk config show` and `tsk config schema`: the config a task here would run with, each value with the
source it came from, and a JSON Schema of the two config files for editors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from tsk.cli.render import emit_json

Json = Annotated[bool, Parameter(negative=(), help="Print JSON for scripts.")]
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_WIDTH = 72  # a long value (a setup snippet, a squid.conf) is cut to this on a terminal; --json has it whole


def show(*, repo: Annotated[str | None, Parameter(help="The repository (default: the current one).")] = None,
         project: Annotated[str | None, Parameter(help="The project name (default: the repo dir's name).")] = None,
         json: Json = False) -> int:
    """Print the resolved config of this repository: every key, its value, and where it came from
    (cli, user [project.X], .tsk/tsk.toml, user [defaults], detected, built-in). Secret env values
    are shown as ***."""
    from tsk.context import Context

    ctx = Context()
    top = ctx.find_repo(Path(repo).expanduser() if repo else None)
    cfg = ctx.config(top, project=project)
    values = _values(cfg)
    if json:
        emit_json({"repo": cfg.repo, "project": cfg.project, "files": _files(ctx, top),
                   "values": values, "sources": dict(sorted(cfg.sources.items()))})
        return 0
    from tsk.text import one_line

    files = _files(ctx, top)
    print(f"config of project {one_line(cfg.project)} in {one_line(cfg.repo)}")
    print(f"  user file:    {files['user']}" + ("" if Path(files["user"]).exists() else " (none)"))
    print(f"  project file: {files['project']}" + ("" if Path(files["project"]).exists() else " (none)"))
    width = max(len(k) for k in values)
    for key, value in values.items():
        text = one_line(_text(value))
        if len(text) > _WIDTH:
            text = text[:_WIDTH - 1] + "…"
        print(f"{key:<{width}}  {text}  ({cfg.sources.get(key, 'built-in')})")
    return 0


def schema(*, project: Annotated[bool, Parameter(negative=(), help=(
        "The schema of a repository's .tsk/tsk.toml instead of the user file."))] = False) -> int:
    """Print a JSON Schema of ~/.config/tsk/tsk.toml (or, with --project, of .tsk/tsk.toml) for editors
    (taplo, Even Better TOML: point `$schema` or their settings at the saved file)."""
    emit_json(config_schema(project=project))
    return 0


def config_schema(*, project: bool) -> dict[str, Any]:
    import msgspec

    from tsk.config.schema import ProjectFile, UserFile

    target = ProjectFile if project else UserFile
    doc = msgspec.json.schema(target)
    title = ".tsk/tsk.toml" if project else "tsk.toml (user config)"
    return {"$schema": SCHEMA_DIALECT, "title": f"tsk {title}", **doc}


def _files(ctx: Any, top: Path) -> dict[str, str]:
    from tsk.config.load import project_file_path

    return {"user": str(ctx.paths.config_file), "project": str(project_file_path(top))}


def _values(cfg: Any) -> dict[str, Any]:
    import msgspec

    from tsk.config.secrets import HIDDEN, is_secret

    raw = msgspec.to_builtins(cfg)
    for key in ("sources", "repo", "project"):
        raw.pop(key, None)
    raw["env"] = [{**e, "value": HIDDEN if is_secret(e["name"]) else e["value"]} for e in raw.get("env", [])]
    return dict(sorted(raw.items()))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
