"""Recipes: the built-ins, lookup order, rendering, prompt input, and `tsk template list|show|edit`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from helpers import make_repo

from tsk.errors import ConfigError, TskError, UsageError
from tsk.paths import Paths
from tsk.recipes import (
    edit_instructions,
    find_recipe,
    list_recipes,
    parse_recipe,
    read_prompt,
    render,
    render_task,
    search_paths,
)
from tsk.recipes.store import SearchPath
from tsk.resources import recipes_dir

BUILTINS = ("feat", "fix", "doc", "refactor", "plan", "ack", "shell")
WITH_PROMPT = ("feat", "fix", "doc", "refactor", "plan")
PROMPT = "Add a --color flag to the `ls` command"


def dirs(repo: Path | None = None) -> tuple[SearchPath, ...]:
    return search_paths(repo, Paths.from_env())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_templates() -> Path:
    return Paths.from_env().config / "templates"


# --- built-ins ------------------------------------------------------------------------------------


def test_every_builtin_loads_with_a_description() -> None:
    assert sorted(p.stem for p in recipes_dir().glob("*.md")) == sorted(BUILTINS)
    for name in BUILTINS:
        recipe = find_recipe(name, dirs())
        assert recipe is not None and recipe.source == "built-in"
        assert recipe.description and "\n" not in recipe.description
        assert "---" not in recipe.body.splitlines()[0]


@pytest.mark.parametrize("name", WITH_PROMPT)
def test_prompt_recipes_render_the_prompt(name: str) -> None:
    out = render_task(name, PROMPT, dirs())
    assert PROMPT in out.instructions
    assert "{{" not in out.instructions and "description:" not in out.instructions
    assert not out.instructions.startswith("---")
    assert out.warnings == () and out.source == "built-in"
    assert "commit" in out.instructions.lower() and "push" in out.instructions.lower()


@pytest.mark.parametrize("name", ["ack", "shell"])
def test_ack_and_shell_take_no_prompt(name: str) -> None:
    recipe = find_recipe(name, dirs())
    assert recipe is not None and not recipe.needs_prompt
    out = render(recipe, None)
    assert out.instructions.strip() and "## Task" not in out.instructions


@pytest.mark.parametrize("name", WITH_PROMPT)
def test_prompt_recipes_without_a_prompt_are_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match=f"template `{name}` needs a prompt: pass -p TEXT, --prompt-file FILE"):
        render_task(name, None, dirs())
    with pytest.raises(UsageError, match="needs a prompt"):
        render_task(name, "  \n", dirs())


def test_plan_asks_for_a_committed_document_not_code() -> None:
    text = render_task("plan", PROMPT, dirs()).instructions
    assert "Do not implement" in text and "plans/" in text and "Commit the plan" in text


def test_the_plan_recipes_task_graph_example_is_a_plan_tsk_reads() -> None:
    # the agent copies the example's shape: it must be a task graph `tsk plan apply --from-task` accepts
    from tsk.plans.spec import parse

    text = render_task("plan", PROMPT, dirs()).instructions
    example = text.split("```json", 1)[1].split("```", 1)[0]
    plan = parse(example, file="recipes/plan.md")
    assert ".tsk/plan.json" in text and plan.format == "graph"
    assert [t.id for t in plan.tasks] == ["api", "ui"] and plan.task("ui").depends_on == ("api",)


# --- rendering ------------------------------------------------------------------------------------


def test_generic_is_the_prompt_alone_and_needs_one() -> None:
    out = render_task("generic", PROMPT, dirs())
    assert out.instructions == PROMPT + "\n" and out.template == "generic" and out.source is None
    with pytest.raises(UsageError, match="template `generic` needs a prompt"):
        render_task("generic", None, dirs())


def test_legacy_description_placeholder_works_with_a_warning(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    write(repo / ".tsk/templates/old.md", "---\ndescription: old style\n---\nDo this: {{DESCRIPTION}}\n")
    out = render_task("old", PROMPT, dirs(repo))
    assert out.instructions == f"Do this: {PROMPT}\n"
    assert len(out.warnings) == 1 and "{{DESCRIPTION}}" in out.warnings[0] and "{{PROMPT}}" in out.warnings[0]


def test_recipe_without_placeholder_gets_the_prompt_under_a_task_heading(tmp_path: Path) -> None:
    write(user_templates() / "plain.md", "---\ndescription: plain\n---\n# Be careful\n\nRun the tests.\n")
    out = render_task("plain", PROMPT, dirs())
    assert out.instructions == f"# Be careful\n\nRun the tests.\n\n## Task\n\n{PROMPT}\n"
    assert render_task("plain", None, dirs()).instructions == "# Be careful\n\nRun the tests.\n"


def test_prompt_is_inserted_verbatim_once() -> None:
    tricky = r"keep \1 and \n and {{PROMPT}} literally"
    out = render_task("feat", tricky, dirs())
    assert tricky in out.instructions and out.instructions.count("{{PROMPT}}") == 1


def test_front_matter_parsing() -> None:
    meta, body = parse_recipe('---\ndescription: "Quoted: yes"\n# a comment\n\nother: x\n---\n\nBody\n')
    assert meta == {"description": "Quoted: yes", "other": "x"} and body == "Body\n"
    assert parse_recipe("No front matter\n") == ({}, "No front matter\n")
    with pytest.raises(ConfigError, match="never closed"):
        parse_recipe("---\ndescription: x\n", path="t.md")
    with pytest.raises(ConfigError, match=r"t\.md: line 2: .*`key: value`"):
        parse_recipe("---\njust words\n---\n", path="t.md")


def test_template_without_front_matter_describes_itself_by_its_first_line() -> None:
    write(user_templates() / "upstream.md", "# Say ack\n\nSay ack and exit.\n")
    recipe = find_recipe("upstream", dirs())
    assert recipe is not None and recipe.description == "Say ack"


# --- lookup ---------------------------------------------------------------------------------------


def test_lookup_order_repo_then_user_then_builtin(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    assert find_recipe("feat", dirs(repo)).source == "built-in"  # type: ignore[union-attr]
    write(user_templates() / "feat.md", "---\ndescription: mine\n---\nUser: {{PROMPT}}\n")
    assert render_task("feat", "x", dirs(repo)).instructions == "User: x\n"
    write(repo / ".tsk/templates/feat.md", "---\ndescription: repo's\n---\nRepo: {{PROMPT}}\n")
    out = render_task("feat", "x", dirs(repo))
    assert out.instructions == "Repo: x\n" and out.source == "repo"
    assert out.path == str(repo / ".tsk/templates/feat.md")

    rows = {r.name: r for r in list_recipes(dirs(repo)).templates}
    assert rows["feat"].source == "repo" and rows["feat"].shadows == ("user", "built-in")
    assert rows["feat"].description == "repo's"
    assert rows["fix"].source == "built-in" and rows["fix"].shadows == ()


def test_unknown_template_lists_names_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        find_recipe("feta", dirs())
    msg = str(err.value)
    assert "unknown template `feta`" in msg and "did you mean `feat`?" in msg
    assert all(name in msg for name in (*BUILTINS, "generic"))
    assert err.value.exit_code == 2


@pytest.mark.parametrize("bad", ["../feat", "a/b", ".hidden", ""])
def test_names_cannot_leave_the_templates_dir(bad: str) -> None:
    with pytest.raises(UsageError, match="not a template name"):
        find_recipe(bad, dirs())


def test_name_may_carry_the_md_suffix() -> None:
    assert find_recipe("fix.md", dirs()).name == "fix"  # type: ignore[union-attr]


# --- prompt input ---------------------------------------------------------------------------------


class TtyIO(io.StringIO):
    """A terminal stdin: reading it would wait for typing, so it must never be read."""

    def read(self, size: int | None = -1) -> str:
        raise AssertionError("stdin was read although it is a terminal")


def test_read_prompt_from_flag_file_and_pipe(tmp_path: Path) -> None:
    f = write(tmp_path / "p.md", "\nfrom a file\n\n")
    assert read_prompt("from -p", None, TtyIO(), True) == "from -p"
    assert read_prompt(None, str(f), TtyIO(), True) == "from a file"
    assert read_prompt(None, None, io.StringIO("from a pipe\n"), False) == "from a pipe"
    assert read_prompt(None, "-", io.StringIO("dash means stdin"), False) == "dash means stdin"
    assert read_prompt("flag wins", None, io.StringIO("ignored"), False) == "flag wins"


def test_read_prompt_never_reads_a_terminal_or_a_closed_stdin() -> None:
    assert read_prompt(None, None, TtyIO("typing"), True) is None
    closed = io.StringIO("x")
    closed.close()
    assert read_prompt(None, None, closed, False) is None
    assert read_prompt(None, None, None, False) is None
    assert read_prompt(None, None, io.StringIO(""), False) is None  # `< /dev/null`
    with pytest.raises(UsageError, match="stdin is a terminal"):
        read_prompt(None, "-", TtyIO(), True)


def test_read_prompt_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="both given"):
        read_prompt("a", str(tmp_path / "p"), None, False)
    missing = tmp_path / "nope.md"
    with pytest.raises(UsageError, match=f"prompt file {missing} does not exist"):
        read_prompt(None, str(missing), None, False)
    with pytest.raises(UsageError, match="cannot read prompt file"):
        read_prompt(None, str(tmp_path), None, False)


def test_edit_instructions_with_a_fake_editor() -> None:
    seen: list[list[str]] = []

    def fake(argv: list[str]) -> int:
        seen.append(argv)
        path = Path(argv[-1])
        path.write_text(path.read_text().replace("draft", "final"))
        return 0

    assert edit_instructions("the draft\n", "code --wait", True, open_editor=fake) == "the final\n"
    assert seen[0][:2] == ["code", "--wait"] and seen[0][2].endswith(".md")
    assert not Path(seen[0][2]).exists()  # the temp file is cleaned up
    edit_instructions("x", None, True, open_editor=fake)
    assert seen[1][0] == "vi"


def test_edit_instructions_needs_a_terminal_and_a_clean_exit() -> None:
    def never(argv: list[str]) -> int:
        raise AssertionError("editor started without a terminal")

    with pytest.raises(UsageError, match="--edit needs a terminal"):
        edit_instructions("x", "vi", False, open_editor=never)
    with pytest.raises(TskError, match="exited with code 1"):
        edit_instructions("x", "vi", True, open_editor=lambda argv: 1)

    def empty(argv: list[str]) -> int:
        Path(argv[-1]).write_text("  \n")
        return 0

    with pytest.raises(TskError, match="empty after editing"):
        edit_instructions("x", "vi", True, open_editor=empty)


# --- tsk template list|show|edit ------------------------------------------------------------------


def test_template_list_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tsk.cli.template import list_

    repo = make_repo(tmp_path / "r")
    write(repo / ".tsk/templates/feat.md", "---\ndescription: repo feat\n---\n{{PROMPT}}\n")
    write(repo / ".tsk/templates/extra.md", "---\ndescription: only here\n---\nhi\n")
    monkeypatch.chdir(repo)
    assert list_(json=True) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in data["templates"]}
    assert sorted(rows) == sorted((*BUILTINS, "extra"))
    assert [n for n in rows if n == "feat"] == ["feat"]  # shadowed once, not twice
    assert rows["feat"]["source"] == "repo" and rows["feat"]["shadows"] == ["built-in"]
    assert rows["extra"]["description"] == "only here"
    assert rows["ack"]["source"] == "built-in"
    assert [s["source"] for s in data["search_paths"]] == ["repo", "user", "built-in"]
    assert data["search_paths"][0]["path"] == str(repo / ".tsk" / "templates")


def test_template_list_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tsk.cli.template import list_

    monkeypatch.chdir(tmp_path)  # outside a repository: no repo search path
    assert list_() == 0
    out = capsys.readouterr().out
    assert "Implement a new feature" in out and "search paths" in out
    assert f"1. user      {user_templates()}  (missing)" in out and "2. built-in" in out


def test_template_show(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tsk.cli.template import show

    monkeypatch.chdir(tmp_path)
    assert show("feat") == 0
    cap = capsys.readouterr()
    assert cap.out == (recipes_dir() / "feat.md").read_text()
    assert str(recipes_dir() / "feat.md") in cap.err and "built-in" in cap.err
    with pytest.raises(UsageError, match="did you mean `fix`"):
        show("fixx")


def test_template_edit_copies_a_builtin_without_overwriting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tsk.cli.template import edit

    opened: list[list[str]] = []

    def fake_interactive(argv: list[str]) -> int:
        opened.append(list(argv))
        Path(argv[-1]).write_text(Path(argv[-1]).read_text() + "\nEdited.\n")
        return 0

    monkeypatch.setattr("tsk.engine.proc.interactive", fake_interactive, raising=False)
    monkeypatch.setenv("EDITOR", "myeditor -w")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.chdir(tmp_path)
    builtin = (recipes_dir() / "fix.md").read_text()
    copy = user_templates() / "fix.md"

    assert edit("fix") == 0
    assert opened == [["myeditor", "-w", str(copy)]]
    assert copy.read_text() == builtin + "\nEdited.\n"
    assert (recipes_dir() / "fix.md").read_text() == builtin  # the built-in is untouched
    assert "copied the built-in `fix`" in capsys.readouterr().err

    assert edit("fix") == 0  # now the user's copy is found first and edited in place
    assert copy.read_text() == builtin + "\nEdited.\n\nEdited.\n"
    assert "copied" not in capsys.readouterr().err
    assert find_recipe("fix", dirs()).source == "user"  # type: ignore[union-attr]


def test_prepare_edit_never_overwrites_a_user_file_that_appears(tmp_path: Path) -> None:
    from tsk.recipes import prepare_edit

    mine = write(user_templates() / "doc.md", "mine\n")
    # A user dir search path placed after the built-ins simulates the file appearing after the lookup.
    builtin, user = dirs()[-1], dirs()[0]
    assert user.source == "user"
    target = prepare_edit("doc", (builtin, user))
    assert target.path == str(mine) and target.copied_from is None
    assert mine.read_text() == "mine\n"


def test_template_edit_failing_editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsk.cli.template import edit

    monkeypatch.setattr("tsk.engine.proc.interactive", lambda argv: 3, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TskError, match="exited with code 3"):
        edit("ack")
