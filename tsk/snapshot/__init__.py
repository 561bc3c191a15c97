"""The repo half of a task (DESIGN §3): the snapshot, the shared checkouts, the task's own git dir,
submodules and git-lfs, merges of parents' results, and the work coming back as a branch."""
