"""`tsk template list|show|edit`: the recipes (task templates) a task can start from."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from tsk.cli.render import console, emit_json
from tsk.context import Context
from tsk.errors import TskError, UsageError
from tsk.recipes.store import SearchPath, find_recipe, list_recipes, prepare_edit, search_paths

Json = Annotated[bool, Parameter(name="--json", negative=(), help="Print JSON for scripts.")]
Repo = Annotated[str | None, Parameter(help="Repository whose .tsk/templates to search (default: the current one).")]
Name = Annotated[str, Parameter(help="Template name, as given to -t/--type.")]


def _search(ctx: Context, repo: str | None) -> tuple[SearchPath, ...]:
    if repo is not None and not Path(repo).expanduser().is_dir():
        raise UsageError(f"--repo {repo} is not a directory", hint="pass the path of a git repository")
    root = ctx.find_repo(Path(repo).expanduser() if repo else None)
    # find_repo falls back to the starting dir; outside a repository there are no repo templates,
    # unless --repo named the directory explicitly.
    in_repo = repo is not None or (root / ".git").exists()
    return search_paths(root if in_repo else None, ctx.paths)


def _open_editor(argv: list[str]) -> int:
    # Imported on use so tests can put a fake `interactive` into tsk.proc.
    from tsk.engine.proc import interactive

    return interactive(argv)


def list_(*, repo: Repo = None, json: Json = False) -> int:
    """List the templates: name, where it comes from, description; then the search paths in order."""
    listing = list_recipes(_search(Context(), repo))
    if json:
        emit_json(listing)
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    for col in ("NAME", "SOURCE", "DESCRIPTION"):
        table.add_column(col)
    for row in listing.templates:
        source = row.source + (f" (hides {', '.join(row.shadows)})" if row.shadows else "")
        table.add_row(Text(row.name), Text(source), Text(row.description))
    out = console()
    out.print(table)
    # Plain prints from here: a path wrapped at the terminal's edge cannot be copied whole.
    print("`generic` (the default -t): no template, the prompt is the whole instruction.")
    print("\nsearch paths, first match wins:")
    for n, sp in enumerate(listing.search_paths, start=1):
        print(f"  {n}. {sp.source:<9} {sp.path}" + ("" if sp.exists else "  (missing)"))
    return 0


def show(name: Name, *, repo: Repo = None) -> int:
    """Print a template exactly as its file holds it, and which file that is."""
    recipe = find_recipe(name, _search(Context(), repo))
    if recipe is None:
        print("tsk: `generic` has no template file: the prompt is the whole instruction", file=sys.stderr)
        return 0
    # The path goes to stderr so `tsk template show feat > mine.md` copies the template cleanly.
    print(f"# {recipe.path} ({recipe.source})", file=sys.stderr)
    sys.stdout.write(Path(recipe.path).read_text(encoding="utf-8"))
    return 0


def edit(name: Name, *, repo: Repo = None) -> int:
    """Open a template in $EDITOR; a built-in is first copied to your templates dir and the copy edited."""
    from tsk.recipes.prompt import editor_command, editor_from_env

    ctx = Context()
    target = prepare_edit(name, _search(ctx, repo))
    if target.copied_from:
        print(f"tsk: copied the built-in `{target.name}` to {target.path}; it now overrides the built-in",
              file=sys.stderr)
    argv = [*editor_command(editor_from_env(ctx.environ)), target.path]
    code = _open_editor(argv)
    if code != 0:
        raise TskError(f"the editor `{argv[0]}` exited with code {code} while editing {target.path}",
                       hint="the file keeps whatever the editor saved")
    return 0
