"""The command tree. Commands are registered by import path so `tsk --help` imports none of them
(nor the docker SDK, python-on-whales or rich's heavier parts)."""

from __future__ import annotations

from cyclopts import App

from tsk import __version__

# Help is plain text (every sub-app inherits it): rendering docstrings as markdown imports rich's
# markdown and markdown-it (~100 ms of a `tsk --help` run in-process) to drop a few backticks.
app = App(
    name="tsk",
    version=__version__,
    help="Hand development tasks to AI coding agents in sandboxed containers; review each result as a git branch.",
    help_format="plaintext",
)

app.command("tsk.cli.run:run", help="Run one task now in a sandbox; its work comes back as a branch.")
app.command("tsk.cli.shell:shell", help="Open a shell in a task sandbox; on exit the work comes back as a branch.")
app.command("tsk.cli.queue:add", help="Queue a task for the server; `-a a,b` queues one per agent; --parent chains.")
app.command("tsk.cli.queue:list_", name="list", help="List tasks: active first, then newest; a summary line.")
app.command("tsk.cli.queue:wait", help="Wait for tasks to end; print their results; exit 0 only if all completed.")
app.command("tsk.cli.fetch:fetch", help="Bring tasks' results from the git remote ([server] remote) in as their "
            "branches.")
app.command("tsk.cli.queue:cancel", help="Cancel tasks; a running one's partial work still comes back.")
app.command("tsk.cli.retry:retry", help="Queue tasks again from their instructions and config; dependents follow.")
app.command("tsk.cli.queue:delete", help="Delete tasks and their dirs (running ones are cancelled first).")
app.command("tsk.cli.queue:clean", help="Remove completed tasks, except parents of pending ones.")
app.command("tsk.cli.review:review", help="Queue your feedback on a task's result as a task that starts from it.")
app.command("tsk.cli.trust:trust", help="Trust this repo's .tsk/tsk.toml so its keys that widen the sandbox apply.")
app.command("tsk.cli.trust:untrust", help="Forget the trust given to this repo's .tsk/tsk.toml.")
app.command("tsk.cli.meta:help_", name="help", help="Show a command's help: `tsk help run` = `tsk run --help`.")
app.command("tsk.cli.meta:completion", help="Print the shell completion script for bash, zsh or fish.")

app.command("tsk.cli.plan:conflicts", help="Merge result branches pairwise in memory; print which conflict, where.")
app.command("tsk.cli.plan:land", help="Merge results onto a branch in dependency order; your working tree untouched.")
app.command("tsk.cli.plan:push", help="Push result branches from this machine; --pr opens a pull request per task.")

plan = App(name="plan", help="Plans: import a task graph or manifest as tasks; follow, cancel and export it.")
plan.command("tsk.cli.plan:apply", help="Queue one task per entry of a plan file, all or none; --dry-run shows the "
             "schedule.")
plan.command("tsk.cli.plan:list_", name="list", help="List plans and their tasks by status.")
plan.command("tsk.cli.plan:show",
             help="A plan's tasks: status in the manifest's words, attempts, branch, pull request.")
plan.command("tsk.cli.plan:cancel", help="Cancel every task of a plan that has not ended.")
plan.command("tsk.cli.plan:export", help="The plan file back, statuses, branches and pull requests filled in.")
app.command(plan)

server = App(name="server", help="The server that runs queued tasks, several at once.")
server.command("tsk.cli.server:start", help="Run queued tasks (-w N at once) until stopped, or idle with -q.")
server.command("tsk.cli.server:stop", help="Stop the running server; its running tasks are cancelled, work kept.")
server.command("tsk.cli.server:status", help="The live servers of the task store (every host's): capacity and load.")
app.command(server)

layers = App(name="layers", help="The content-addressed layer store: build, list, explain, prune, push and pull "
             "sandbox images.")
# This cyclopts cannot read a lazy command's docstring without importing it, so the one-line
# summaries for the command list are given here; each command's own --help uses its docstring.
_BUILD = "Build the layers `tsk run` here would use, plus the proxy image; only what is missing."
layers.command("tsk.cli.layers:build", help=_BUILD)
layers.command("tsk.cli.layers:ls", help="List layer images: key, kind, name, size, last used, in use.")
layers.command("tsk.cli.layers:why", help="For each layer of the target: a hit, or what changed since it last built.")
layers.command("tsk.cli.layers:prune", help="Remove layers nothing needs (reachability plus age).")
layers.command("tsk.cli.layers_remote:push", help="Push the targets' layers the registry lacks, by key.")
layers.command("tsk.cli.layers_remote:pull", help="Pull the targets' layers missing here, by key; build nothing.")
layers.command("tsk.cli.layers_remote:lock",
               help="Write .tsk/layers.lock (keys and input digests); --check says what changed.")
app.command(layers)

template = App(name="template", help="Task templates (recipes): list, show and edit them.")
template.command("tsk.cli.template:list_", name="list",
                 help="List templates: name, where each comes from, description; then the search paths.")
template.command("tsk.cli.template:show", help="Print a template's file (its path goes to stderr).")
template.command("tsk.cli.template:edit",
                 help="Edit a template in $EDITOR; a built-in is copied to your templates dir first.")
app.command(template)

config = App(name="config", help="The resolved config with where each value came from, and tsk.toml's JSON Schema.")
config.command("tsk.cli.settings:show", help="Print the config a task here runs with, each value with its source.")
config.command("tsk.cli.settings:schema", help="Print a JSON Schema of tsk.toml (--project: .tsk/tsk.toml) for "
               "editors.")
app.command(config)

proxy = App(name="proxy", help="The egress proxies (Squid) tasks go out through.")
proxy.command("tsk.cli.proxy:stop", help="Stop the proxies your tasks started that no task uses now.")
app.command(proxy)

docker = App(name="docker", help="Upstream-compatible aliases (`tsk docker build` = `tsk layers build`).")
docker.command("tsk.cli.layers:build", help=_BUILD)
app.command(docker)
