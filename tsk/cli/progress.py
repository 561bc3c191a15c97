"""Live progress for layer builds, pulls and pushes: a rich display on a terminal, plain lines otherwise
(both on stderr). Warnings always print, even when the output is JSON."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from tsk.cli.render import human_bytes
from tsk.layers.plan import Layer
from tsk.layers.store import LayerResult


class BuildProgress:
    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self._live: Any = None
        self._rows: dict[str, list[str]] = {}
        self._t0: dict[str, float] = {}

    def __enter__(self) -> BuildProgress:
        if self.tty:
            from rich.live import Live

            from tsk.cli.render import console

            self._live = Live(self._render(), console=console(stderr=True), refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(et, ev, tb)

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        for slot, (state, detail) in self._rows.items():
            mark = {"building": "[yellow]…[/]", "pulling": "[yellow]↓[/]", "pushing": "[yellow]↑[/]",
                    "waiting": "[blue]⧗[/]", "built": "[green]✓[/]", "pulled": "[green]✓[/]",
                    "pushed": "[green]✓[/]", "hit": "[green]✓[/]"}.get(state, " ")
            busy = state in ("building", "pulling", "pushing")
            elapsed = f"{time.monotonic() - self._t0[slot]:.0f}s" if busy else ""
            table.add_row(mark, f"[bold]{slot}[/]", state, elapsed, f"[dim]{detail[-100:]}[/]")
        return table

    def _set(self, layer: Layer, state: str, detail: str = "") -> None:
        self._rows[layer.slot] = [state, detail]
        if self._live is not None:
            self._live.update(self._render())

    def _say(self, text: str) -> None:
        if not self.quiet and not self.tty:
            print(text, file=sys.stderr, flush=True)

    def started(self, layer: Layer) -> None:
        self._t0[layer.slot] = time.monotonic()
        self._set(layer, "building", f"key {layer.key[:12]}")
        self._say(f"building {layer.slot} (key {layer.key[:12]}, from {layer.origin})")

    def waiting(self, layer: Layer) -> None:
        self._t0[layer.slot] = time.monotonic()
        self._set(layer, "waiting", "another tsk process is building this layer")
        self._say(f"waiting for another process building {layer.slot} (key {layer.key[:12]})")

    def pulling(self, layer: Layer) -> None:
        self._t0[layer.slot] = time.monotonic()
        self._set(layer, "pulling", f"key {layer.key[:12]}")
        self._say(f"looking for {layer.slot} (key {layer.key[:12]}) in the registry")

    def pushing(self, layer: Layer) -> None:
        self._t0[layer.slot] = time.monotonic()
        self._set(layer, "pushing", f"key {layer.key[:12]}")
        self._say(f"pushing {layer.slot} (key {layer.key[:12]})")

    def warning(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(f"[yellow]warning:[/] {text}", markup=True, highlight=False)
        else:
            print(f"tsk: warning: {text}", file=sys.stderr, flush=True)

    def line(self, layer: Layer, text: str) -> None:
        if self._live is not None and text.strip():
            self._rows[layer.slot][1] = text.strip()
            self._live.update(self._render())

    def finished(self, layer: Layer, result: LayerResult) -> None:
        if result.pushed == "pushed":
            self._set(layer, "pushed", human_bytes(result.pushed_bytes))
            self._say(f"pushed {layer.slot} ({human_bytes(result.pushed_bytes)})")
            return
        moved = f", {human_bytes(result.pulled_bytes)}" if result.status == "pulled" else ""
        self._set(layer, result.status, f"{result.seconds:.1f}s{moved}")
        self._say(f"{result.status} {layer.slot} in {result.seconds:.1f}s{moved}")
