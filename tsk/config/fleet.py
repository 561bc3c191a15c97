"""Where a fleet's tasks are kept and how their code travels (DESIGN §10): the task store's database
(TSK_DATABASE_URL, else `[server] database`) and the git remote (`[server] remote`). None of either:
this machine alone, as always."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import UsageError

if TYPE_CHECKING:
    from tsk.context import Context


class Fleet(msgspec.Struct, frozen=True, kw_only=True):
    database: str | None = None  # a postgresql:// URL; None: the SQLite file in the data dir
    remote: str | None = None  # the git remote of snapshots and results (checked); None: the user's repo, directly


def fleet(ctx: Context) -> Fleet:
    from tsk.config.load import load_user_file

    server = load_user_file(ctx.paths.config_file).server
    url = ctx.environ.get("TSK_DATABASE_URL") or (server.database if server else None)
    remote = (server.remote if server else None) or None
    return Fleet(database=url or None, remote=check_remote(remote) if remote else None)


def check_remote(remote: str) -> str:
    """The remote as git is to be given it: a URL, `host:path`, or an absolute path (`~` expanded)."""
    remote = remote.strip()
    if "://" in remote or re.match(r"^[^/]+:", remote):
        return remote
    path = Path(remote).expanduser()
    if not path.is_absolute():
        raise UsageError(f"[server] remote = {remote!r} is a relative path; every host would read it from "
                         "another dir", hint="give a URL (ssh://, https://, file://) or an absolute path")
    return str(path)

