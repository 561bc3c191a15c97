"""A plan task's instructions. Pure: the issue, when the task names one, is fetched by the caller
(forge.GitHub.issue_if_reachable) and passed in, or is None when the forge could not be asked."""

from __future__ import annotations

from tsk.plans.forge import Issue
from tsk.plans.model import PlanTask


def compose(task: PlanTask, issue: Issue | None = None) -> str:
    """The task's `prompt` verbatim when it has one; else its title, description, issue, acceptance criteria
    (a checklist), write scope and validation command, in that order."""
    if task.prompt is not None:
        return task.prompt
    parts = [f"# {task.title.strip()}"]
    if task.description and task.description.strip():
        parts.append(task.description.strip())
    if task.issue is not None:
        if issue is not None and issue.number == task.issue:
            head = f"## GitHub issue #{issue.number}: {issue.title.strip()}" if issue.title.strip() \
                else f"## GitHub issue #{issue.number}"
            parts.append(head + ("\n\n" + issue.body.strip() if issue.body.strip() else ""))
        else:
            parts.append(f"This task implements GitHub issue #{task.issue}.")
    if task.acceptance:
        parts.append("## Acceptance criteria\n\n" + "\n".join(f"- [ ] {c.strip()}" for c in task.acceptance))
    if task.scope:
        globs = ", ".join(f"`{g}`" for g in task.scope)
        parts.append(f"## Write scope\n\nChange only files that match {globs}; other tasks are changing the rest.")
    if task.validate:
        parts.append(f"## Validation\n\nWhen you are done, this must pass: `{task.validate}`")
    return "\n\n".join(parts) + "\n"
