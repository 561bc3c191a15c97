"""Plans: a named set of tasks with dependencies, write scopes and gates (DESIGN.md §8).

- model.py      the plan as frozen data (Plan, PlanTask, Gate)
- spec.py       read a task-orchestrator manifest or a task graph into a Plan, all or nothing
                (formats.py reads each format, jsonshape.py checks JSON by hand with paths in messages)
- prompt.py     a task's instructions, composed from its fields and its issue (pure)
- scopes.py     do two sets of write-scope globs overlap? (conservative); which files lie outside one
- schedule.py   which tasks may start now, why the others wait, whose results each starts from (pure)
- dryrun.py     the schedule a plan implies, level by level, before anything runs (pure)
- forge.py      a small GitHub REST client: pull requests and issues
- pulls.py      a pull request's title and body from a task's result (pure)
- merges.py     pairwise conflicts, landing onto an integration branch, pushing (git, in memory)
- export.py     the manifest back with statuses, branches and pull requests filled in (pure)

Nothing here imports the queue, the task store, the sandbox or the docker adapters: the queue calls these."""
