"""Where recipes are found: `<repo>/.tsk/templates`, then `<config>/templates`, then the built-ins.
The first file named `NAME.md` wins; the ones it hides are reported, never merged."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tsk.errors import TskError, UsageError
from tsk.paths import Paths
from tsk.recipes.recipe import GENERIC, Recipe, Source, load_recipe
from tsk.resources import recipes_dir

# A name becomes a file name: nothing that could climb out of a templates dir.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SearchPath(msgspec.Struct, frozen=True, kw_only=True):
    source: Source
    path: str
    exists: bool


class RecipeRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source: Source
    description: str
    path: str
    shadows: tuple[Source, ...] = ()  # sources further down the search path with a file of this name


class RecipeListing(msgspec.Struct, frozen=True, kw_only=True):
    templates: tuple[RecipeRow, ...]
    search_paths: tuple[SearchPath, ...]


class EditTarget(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    path: str  # the file to open in the editor
    source: Source
    copied_from: str | None = None  # the built-in copied to `path` first, if any


def search_paths(repo: Path | None, paths: Paths, builtin: Path | None = None) -> tuple[SearchPath, ...]:
    """The templates dirs in lookup order. `repo` None: outside a repository, no repo templates."""
    dirs: list[tuple[Source, Path]] = []
    if repo is not None:
        dirs.append(("repo", repo / ".tsk" / "templates"))
    dirs.append(("user", paths.config / "templates"))
    dirs.append(("built-in", builtin or recipes_dir()))
    return tuple(SearchPath(source=s, path=str(d), exists=d.is_dir()) for s, d in dirs)


def _normalize(name: str) -> str:
    bare = name.removesuffix(".md")
    if not _NAME.fullmatch(bare):
        raise UsageError(f"`{name}` is not a template name: use letters, digits, `.`, `_` and `-`",
                         hint="`tsk template list` shows the available templates")
    return bare


def _read(source: Source, file: Path) -> Recipe:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TskError(f"cannot read template {file}: {exc}", hint="fix or remove the file") from exc
    return load_recipe(file.stem, source, str(file), text)


def _files(sp: SearchPath) -> list[Path]:
    if not sp.exists:
        return []
    return sorted(p for p in Path(sp.path).glob("*.md") if p.is_file() and _NAME.fullmatch(p.stem))


def available_names(dirs: Sequence[SearchPath]) -> list[str]:
    names = {p.stem for sp in dirs for p in _files(sp)}
    names.add(GENERIC)
    return sorted(names)


def find_recipe(name: str, dirs: Sequence[SearchPath]) -> Recipe | None:
    """The recipe a name means, first match in search order. None for `generic` when no file of that
    name exists: it is the built-in "no recipe"."""
    bare = _normalize(name)
    for sp in dirs:
        file = Path(sp.path) / f"{bare}.md"
        if sp.exists and file.is_file():
            return _read(sp.source, file)
    if bare == GENERIC:
        return None
    names = available_names(dirs)
    close = difflib.get_close_matches(bare, names, n=1)
    raise UsageError(
        f"unknown template `{bare}`; available: {', '.join(names)}"
        + (f"; did you mean `{close[0]}`?" if close else ""),
        hint="`tsk template list` shows each with its description and where it comes from",
    )


def list_recipes(dirs: Sequence[SearchPath]) -> RecipeListing:
    winners: dict[str, Recipe] = {}
    shadows: dict[str, list[Source]] = {}
    for sp in dirs:
        for file in _files(sp):
            if file.stem in winners:
                shadows[file.stem].append(sp.source)
            else:
                winners[file.stem] = _read(sp.source, file)
                shadows[file.stem] = []
    rows = tuple(
        RecipeRow(name=r.name, source=r.source, description=r.description, path=r.path,
                  shadows=tuple(shadows[r.name]))
        for r in sorted(winners.values(), key=lambda r: r.name)
    )
    return RecipeListing(templates=rows, search_paths=tuple(dirs))


def prepare_edit(name: str, dirs: Sequence[SearchPath]) -> EditTarget:
    """The file `tsk template edit NAME` should open: the one in effect, except that a built-in is
    first copied to the user's templates dir (the package's copy would be lost on upgrade)."""
    recipe = find_recipe(name, dirs)
    if recipe is None:
        user = next(sp for sp in dirs if sp.source == "user")
        raise UsageError(f"`{GENERIC}` is not a file: it means no recipe, the prompt is the whole instruction",
                         hint=f"to customise it, create {Path(user.path) / (GENERIC + '.md')}")
    if recipe.source != "built-in":
        return EditTarget(name=recipe.name, path=recipe.path, source=recipe.source)
    user_dir = Path(next(sp.path for sp in dirs if sp.source == "user"))
    target = user_dir / f"{recipe.name}.md"
    try:
        user_dir.mkdir(parents=True, exist_ok=True)
        # Exclusive create: a user copy that appeared meanwhile is the user's work and is kept.
        with target.open("x", encoding="utf-8") as f:
            f.write(Path(recipe.path).read_text(encoding="utf-8"))
    except FileExistsError:
        return EditTarget(name=recipe.name, path=str(target), source="user")
    except OSError as exc:
        raise TskError(f"cannot copy the built-in template `{recipe.name}` to {target}: {exc}",
                       hint=f"check that {user_dir} is writable") from exc
    return EditTarget(name=recipe.name, path=str(target), source="user", copied_from=recipe.path)
