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
    # The recipe is a script (front matter `script: true`), written for the exec agent; every other recipe
    # is prose for a coding agent, which the exec agent would run as bash.
    script: bool = False


def _finish(text: str) -> str:
    return text.strip("\n") + "\n"


def is_script(recipe: Recipe) -> bool:
    return recipe.meta.get("script", "").strip().lower() in ("true", "yes")


def refuse_prose_for_exec(template: str, script: bool, agents: Sequence[str]) -> None:
    """The exec agent runs its instructions as a bash script: a template's prose would run as commands
    and fail after the real work was done. Refused before anything is made (exit 2)."""
    if template == GENERIC or script or "exec" not in agents:
        return
    raise UsageError(f"the exec agent runs its instructions as a bash script, and template `{template}` is "
                     "prose for a coding agent",
                     hint="drop -t to run the prompt alone as the script, or pick a coding agent with -a; "
                          "a template written as a script says `script: true` in its front matter")


def template_is_script(name: str, dirs: Sequence[SearchPath]) -> bool:
    """Whether the template a task was made from is a script (`generic`, the prompt alone, is); a template
    gone since counts as prose."""
    try:
        recipe = find_recipe(name, dirs)
    except UsageError:
        return False
    return recipe is None or is_script(recipe)


def _rendered(recipe: Recipe, text: str, warnings: tuple[str, ...] = ()) -> Rendered:
    script = is_script(recipe)
    return Rendered(instructions=_finish(text), template=recipe.name, source=recipe.source, path=recipe.path,
                    warnings=warnings, script=script)


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

