"""The context a command runs in: paths, the repo, and lazily made clients for the engine, the builder
and the layer index. Built from the environment once per command and passed down.

The engine is chosen here (tsk/engine/choice.py): the `--container-engine` flag the command passes in,
else TSK_CONTAINER, else the user's config file, read only then and only for that key (a quick command
that needs no engine never reads it)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tsk.paths import Paths

if TYPE_CHECKING:
    from tsk.config.schema import ProjectSettings, ResolvedConfig
    from tsk.engine.ports import Builder, Engine
    from tsk.layers.index import LayerIndex


class Context:
    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        engine: Engine | None = None,
        builder: Callable[[], Builder] | None = None,
        container_engine: str | None = None,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.paths = Paths.from_env(self.environ)
        if self.paths.runtime_shared:
            _check_shared_runtime(self.paths.runtime.parent)
        self.cwd = cwd or Path.cwd()
        self._given = engine  # a test's fake: it stands for every engine
        self._engine = engine
        self._builder = builder
        self._flag = container_engine
        self._warming: threading.Thread | None = None

    @cached_property
    def engine_choice(self) -> tuple[str, str]:
        """The engine's name and where that came from; UsageError (exit 2) for an unknown one."""
        if self._given is not None:
            return self._given.name, "given"
        from tsk.engine.choice import choose

        return choose(self._flag, self.environ, self._user_engine)

    @property
    def engine_name(self) -> str:
        return self.engine_choice[0]

    def _user_engine(self) -> str | None:
        from tsk.config.load import load_user_file

        return load_user_file(self.paths.config_file).container_engine

    def on_engine(self, name: str) -> Context:
        """This context, or one like it on engine `name` (a task queued for another engine runs on that one)."""
        if self._given is not None or name == self.engine_name:
            return self
        return Context(environ=self.environ, cwd=self.cwd, builder=self._builder, container_engine=name)

    def warm_engine(self) -> None:
        """Import the engine client and connect in the background while the caller does other work
        (snapshot, config: mostly waiting on git), so the first engine call does not pay for both."""
        if self._engine is not None or self._warming is not None:
            return
        name = self.engine_name  # here: a bad choice is an error now, not a silent failure in the thread

        def work() -> None:
            from tsk.engine.registry import make_engine

            eng = make_engine(name, self.environ)
            with contextlib.suppress(Exception):  # a failure shows again, with its message, on first use
                eng.ping()
            self._engine = eng

        self._warming = threading.Thread(target=work, name="tsk-engine-warm", daemon=True)
        self._warming.start()

    @cached_property
    def engine(self) -> Engine:
        if self._warming is not None:
            self._warming.join()
        if self._engine is None:
            from tsk.engine.registry import make_engine

            self._engine = make_engine(self.engine_name, self.environ)
        return self._engine

    def builder_factory(self) -> Builder:
        if self._builder is not None:
            return self._builder()
        from tsk.engine.registry import make_builder

        return make_builder(self.engine_name, self.environ)

    @cached_property
    def cache_dir(self) -> Path:
        """The cache dir, made private (0700) on first use: it holds build contexts and the proxies' configs."""
        from tsk.files import private_dir

        return private_dir(self.paths.cache)

    @cached_property
    def index(self) -> LayerIndex:
        from tsk.layers.index import LayerIndex

        self.cache_dir  # noqa: B018 - made private before the index makes its own dir in it
        return LayerIndex(self.paths.layer_index_of(self.engine_name))

    def find_repo(self, explicit: Path | None = None) -> Path:
        """The repository's top level: the nearest directory upwards with a `.git`; without one,
        the starting directory itself (layer commands work outside a repository too)."""
        start = (explicit or self.cwd).resolve()
        for d in (start, *start.parents):
            if (d / ".git").exists():
                return d
        return start

    def config(
        self, repo: Path, cli: ProjectSettings | None = None, project: str | None = None
    ) -> ResolvedConfig:
        import msgspec

        from tsk.config import load_config

        cfg = load_config(repo, self.paths, cli=cli, project=project)
        # The engine's choice has more sources than the user file (the flag, TSK_CONTAINER): the config a
        # task is recorded with names the engine it was made for, and runs on that one.
        name, source = self.engine_choice
        if name == cfg.container_engine and source in ("user file", "built-in", "given"):
            return cfg
        return msgspec.structs.replace(cfg, container_engine=name,
                                       sources={**cfg.sources, "container_engine": source})


def _check_shared_runtime(base: Path) -> None:
    """The runtime dir's fallback lives in /tmp: it must be this user's own, closed, and no link."""
    from tsk.errors import TskError
    from tsk.files import owned_private_dir

    if not owned_private_dir(str(base)):
        raise TskError(f"{base} (tsk's runtime dir when XDG_RUNTIME_DIR is unset) is not a private directory "
                       "of yours: it is a link, another user's, or others may write into it",
                       hint="remove it if it is not yours, or set TSK_RUNTIME_DIR to a dir only you can use")
