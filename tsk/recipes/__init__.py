"""Recipes (task templates): markdown instructions with a `{{PROMPT}}` placeholder, looked up in the
repo's `.tsk/templates`, then the user's templates dir, then the built-ins shipped with tsk."""

from __future__ import annotations

from tsk.recipes.prompt import edit_instructions, editor_command, editor_from_env, read_prompt
from tsk.recipes.recipe import GENERIC, Recipe, Source, parse_recipe
from tsk.recipes.render import Rendered, render, render_task
from tsk.recipes.store import (
    EditTarget,
    RecipeListing,
    RecipeRow,
    SearchPath,
    find_recipe,
    list_recipes,
    prepare_edit,
    search_paths,
)

__all__ = [
    "GENERIC",
    "EditTarget",
    "Recipe",
    "RecipeListing",
    "RecipeRow",
    "Rendered",
    "SearchPath",
    "Source",
    "edit_instructions",
    "editor_command",
    "editor_from_env",
    "find_recipe",
    "list_recipes",
    "parse_recipe",
    "prepare_edit",
    "read_prompt",
    "render",
    "render_task",
    "search_paths",
]
