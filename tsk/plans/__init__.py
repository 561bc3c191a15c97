"""Plans: a named set of tasks with dependencies, write scopes and gates (DESIGN.md §8).

- scopes.py     do two sets of write-scope globs overlap? (conservative); which files lie outside one
- forge.py      a small GitHub REST client: pull requests and issues

Nothing here imports the queue, the task store, the sandbox or the docker adapters: the queue calls these."""
