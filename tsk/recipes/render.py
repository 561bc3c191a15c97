"""Turn a recipe and a prompt into the instructions an agent reads."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from tsk.errors import UsageError
from tsk.recipes.recipe import GENERIC, PLACEHOLDER, Recipe, Source
from tsk.recipes.store import SearchPath, find_recipe

_HOW = "pass -p TEXT, --prompt-file FILE, or pipe it on stdin"


class Rendered(msgspec.Struct, frozen=True, kw_only=True):
    instructions: str
    template: str  # the recipe's name, `generic` for none
    source: Source | None = None
    path: str | None = None
    warnings: tuple[str, ...] = ()  # the CLI prints each as `tsk: warning: ...`


def _finish(text: str) -> str:
    return text.strip("\n") + "\n"


def _rendered(recipe: Recipe, text: str, warnings: tuple[str, ...] = ()) -> Rendered:
    return Rendered(instructions=_finish(text), template=recipe.name, source=recipe.source, path=recipe.path,
                    warnings=warnings)


def render(recipe: Recipe | None, prompt: str | None) -> Rendered:
    """Fill in a recipe. None is `generic`: the prompt alone. A recipe without a placeholder that is
    given a prompt gets it appended under `## Task`, so the prompt is never silently dropped."""
    if prompt is not None and not prompt.strip():
        prompt = None
    if recipe is None:
        if prompt is None:
            raise UsageError(f"template `{GENERIC}` needs a prompt: {_HOW}",
                             hint="or pick a recipe that needs none with -t, e.g. -t ack")
        return Rendered(instructions=_finish(prompt), template=GENERIC)
    found = {m.group(1) for m in PLACEHOLDER.finditer(recipe.body)}
    if not found:
        text = recipe.body if prompt is None else f"{recipe.body.rstrip()}\n\n## Task\n\n{prompt.strip()}"
        return _rendered(recipe, text)
    if prompt is None:
        raise UsageError(f"template `{recipe.name}` needs a prompt: {_HOW}",
                         hint=f"the template is {recipe.path}")
    warnings: tuple[str, ...] = ()
    if "DESCRIPTION" in found:
        warnings = (f"template `{recipe.name}` ({recipe.path}) uses the deprecated placeholder "
                    "{{DESCRIPTION}}; rename it to {{PROMPT}}",)
    # One pass with a function: a prompt that itself contains `{{PROMPT}}` or backslashes stays verbatim.
    filled = prompt.strip()
    return _rendered(recipe, PLACEHOLDER.sub(lambda _m: filled, recipe.body), warnings)


def render_task(name: str, prompt: str | None, dirs: Sequence[SearchPath]) -> Rendered:
    """Look a template up by name and render it: what `tsk run -t NAME` writes to instructions.md."""
    return render(find_recipe(name, dirs), prompt)

