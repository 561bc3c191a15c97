"""`tsk layers build|ls|why|prune` (and `tsk docker build`); push, pull and lock are in layers_remote.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from tsk.cli.engine_opt import EngineOpt
from tsk.cli.render import ago, console, emit_json, human_bytes
from tsk.context import Context
from tsk.layers.service import TargetRequest

if TYPE_CHECKING:
    from tsk.layers.service import BuildReport

Json = Annotated[bool, Parameter(name="--json", negative=(), help="Print JSON for scripts.")]
Stacks = Annotated[tuple[str, ...], Parameter(
    name="--stack", negative=(), help="Stack(s) to use instead of the configured one; repeat or comma-separate.")]
Agents = Annotated[tuple[str, ...], Parameter(
    name=["--agent", "-a"], negative=(),
    help="Agent(s) to use instead of the configured one; repeat or comma-separate.")]
Project = Annotated[str | None, Parameter(
    help="Project name whose [project.NAME] settings apply (default: the repo's name).")]
Repo = Annotated[str | None, Parameter(help="Repository to read config from (default: the current one).")]
AllStacks = Annotated[bool, Parameter(negative=(), help="Every known stack (built-in and from config).")]
Registry = Annotated[str | None, Parameter(
    help="Registry repository for layers, e.g. ghcr.io/acme/tsk-layers (default: TSK_REGISTRY, then "
         "[layers] registry).")]


def _request(repo: str | None, project: str | None, stack: tuple[str, ...], agent: tuple[str, ...],
             all_stacks: bool = False, proxy: bool = True, sandbox: bool = True) -> TargetRequest:
    return TargetRequest(repo=repo, project=project, stacks=stack, agents=agent, all_stacks=all_stacks, proxy=proxy,
                         sandbox=sandbox)


def build(
    *,
    stack: Stacks = (),
    agent: Agents = (),
    project: Project = None,
    repo: Repo = None,
    all_stacks: AllStacks = False,
    no_cache: Annotated[bool, Parameter(negative=(), help="Rebuild every layer of the target from scratch.")] = False,
    dry_run: Annotated[bool, Parameter(
        negative=(), help="Print each layer's Dockerfile, key and inputs; build nothing.")] = False,
    push: Annotated[bool, Parameter(
        negative=(), help="Then push every layer the registry lacks (the CI prewarm).")] = False,
    registry: Registry = None,
    proxy_only: Annotated[bool, Parameter(negative=(), help=(
        "Only the proxy image (upstream's `tsk docker build --proxy-only`), none of the sandbox's layers."))] = False,
    json: Json = False,
    container_engine: EngineOpt = None,
) -> int:
    """Build the layers `tsk run` in this repo would use, plus the proxy image; only missing ones.

    With a registry configured, a missing layer is pulled by its key when the registry has it."""
    from tsk.layers import service

    if proxy_only:
        given = [flag for flag, on in (("--stack", stack), ("--agent", agent), ("--project", project),
                                       ("--all-stacks", all_stacks), ("--dry-run", dry_run)) if on]
        if given:
            from tsk.errors import UsageError

            raise UsageError(f"--proxy-only builds the proxy image alone: {', '.join(given)} would not apply",
                             hint="drop " + " and ".join(given) + ", or drop --proxy-only")
    ctx = Context(container_engine=container_engine)
    req = _request(repo, project, stack, agent, all_stacks, sandbox=not proxy_only)
    if dry_run:
        planned = service.dry_run(ctx, req)
        if json:
            emit_json(planned)
            return 0
        out = console()
        for p in planned:
            out.rule(f"{p.kind}/{p.name}  {p.status}")
            out.print(f"key    {p.key}\nimage  {p.image}\nfrom   {p.origin}")
            out.print("inputs " + ", ".join(f"{k}={v}" for k, v in p.inputs.items() if v not in (None, {}, "")))
            out.print(p.dockerfile, markup=False)
        return 0
    from tsk.cli.progress import BuildProgress

    with BuildProgress(quiet=json) as progress:
        report = service.build(ctx, req, no_cache=no_cache, events=progress, registry=registry, push=push)
    return render_report(report, json)


def render_report(report: BuildReport, json: bool) -> int:
    """One line per layer, then the summary; or the layers as JSON. Exit 1 when a layer is missing."""
    if json:
        emit_json(report.layers)
        return 1 if report.count("missing") else 0
    out = console()
    for r in report.layers:
        slot = f"{r.kind}/{r.name}"
        push = {"pushed": "  pushed", "present": "  in registry"}.get(r.pushed, "")
        out.print(f"{r.status:>7}  {slot:<24} {r.key[:16]}  {r.seconds:7.2f}s  {r.image}{push}", markup=False)
    out.print(summary(report), markup=False)
    for warning in report.warnings:
        out.print(f"warning: {warning}", markup=False)
    return 1 if report.count("missing") else 0


def summary(report: BuildReport) -> str:
    rs = report.layers
    pushed = sum(1 for r in rs if r.pushed == "pushed")
    parts = [f"built {report.count('built')}", f"pulled {report.count('pulled')}", f"pushed {pushed}",
             f"hit {report.count('hit')}"]
    if report.count("missing"):
        parts.append(f"missing {report.count('missing')}")
    moved = [f"{human_bytes(sum(r.pulled_bytes for r in rs))} pulled",
             f"{human_bytes(sum(r.pushed_bytes for r in rs))} pushed"]
    where = f" ({report.registry})" if report.registry else ""
    return (f"{len(rs)} layers{where}: " + ", ".join(parts) + "; " + ", ".join(moved)
            + f" (builder called {report.builder_calls} time(s))")


def ls(*, json: Json = False) -> int:
    """List the layer images in the store: key, kind, name, size, last used, in use."""
    from tsk.layers.listing import list_layers

    rows = list_layers(Context())
    if json:
        emit_json(rows)
        return 0
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("KEY", "KIND", "NAME", "SIZE", "OWN", "LAST USED", "IN USE"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.key[:16], r.kind, r.name, human_bytes(r.size), human_bytes(r.own_size), ago(r.last_used),
                      str(r.in_use) if r.in_use else "-")
    console().print(table)
    console().print(f"{len(rows)} layers, {human_bytes(sum(r.own_size for r in rows))} of their own")
    return 0


def why(
    *, stack: Stacks = (), agent: Agents = (), project: Project = None, repo: Repo = None, json: Json = False
) -> int:
    """For each layer of the target: a hit, or what changed since that slot last built."""
    from tsk.layers.why import why as explain

    rows = explain(Context(), _request(repo, project, stack, agent))
    if json:
        emit_json(rows)
        return 0
    out = console()
    for r in rows:
        head = f"{r.kind}/{r.name}  {r.key[:16]}  "
        if r.status == "hit":
            out.print(head + "hit", markup=False)
            continue
        out.print(head + "miss: " + "; ".join(r.reasons), markup=False)
        if r.diff:
            out.print(r.diff.rstrip("\n"), markup=False)
    return 0


def prune(
    *,
    dry_run: Annotated[bool, Parameter(negative=(), help="List what would go; remove nothing.")] = False,
    older_than: Annotated[str, Parameter(help="Keep layers used within this long: 90s, 30m, 12h, 7d, 2w.")] = "7d",
    project: Project = None,
    repo: Repo = None,
    json: Json = False,
) -> int:
    """Remove layers nothing needs: not the current target's, not used by a container, not used recently."""
    from tsk.durations import parse_duration
    from tsk.layers.prune import prune as run_prune

    report = run_prune(Context(), _request(repo, project, (), ()), dry_run=dry_run,
                       older_than=parse_duration(older_than))
    if json:
        emit_json(report)
        return 0 if not report.failed else 1
    out = console()
    verb = "would remove" if dry_run else "removed"
    for item in report.removed:
        out.print(f"{verb} {item.kind}/{item.name} {item.key[:16]} ({human_bytes(item.bytes)})", markup=False)
    for item in report.kept:
        out.print(f"kept   {item.kind}/{item.name} {item.key[:16]}: {item.reason}", markup=False)
    for failure in report.failed:
        out.print(f"could not remove {failure}", markup=False)
    out.print(f"{verb} {len(report.removed)} layer(s), {human_bytes(report.bytes_freed)}"
              + (" would be freed" if dry_run else " freed"))
    return 0 if not report.failed else 1
