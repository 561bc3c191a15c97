"""What a command line may set for one task beyond its config, as plain data (no import of the runner,
so a command's --help stays light)."""

from __future__ import annotations

import msgspec


class TaskOptions(msgspec.Struct, frozen=True, kw_only=True):
    """A task's options as given on the command line (its limits, validation, model); None: from config, else
    built in."""

    timeout: str | None = None
    idle_timeout: str | None = None
    budget_usd: float | None = None
    max_attempts: int | None = None
    validate: str | None = None
    model: str | None = None

    def settings(self) -> dict[str, object]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}
