"""tsk's configuration: the user file, the project file, and their merge into one ResolvedConfig."""

from __future__ import annotations

from pathlib import Path

from tsk.config.detect import detect_stack, project_name
from tsk.config.load import load_project_file, load_user_file, project_file_path
from tsk.config.resolve import resolve
from tsk.config.schema import (
    EnvVar,
    Layers,
    LayersConfig,
    ProjectFile,
    ProjectSettings,
    ResolvedConfig,
    ServerConfig,
    SlotConfig,
    UserFile,
    Volume,
)
from tsk.paths import Paths

__all__ = [
    "EnvVar",
    "Layers",
    "LayersConfig",
    "ProjectFile",
    "ProjectSettings",
    "ResolvedConfig",
    "ServerConfig",
    "SlotConfig",
    "UserFile",
    "Volume",
    "detect_stack",
    "load_config",
    "load_project_file",
    "load_user_file",
    "project_name",
    "resolve",
]


def load_config(
    repo: Path, paths: Paths, cli: ProjectSettings | None = None, project: str | None = None
) -> ResolvedConfig:
    """Load the user and project config files and merge them with the command line's settings. A
    project file whose widening keys the user has not trusted is refused (tsk/config/trust.py)."""
    from tsk.config import trust

    user = load_user_file(paths.config_file)
    project_file = load_project_file(repo)
    trust.require(trust.state(repo, project_file_path(repo), project_file, user, project or project_name(repo),
                              paths.data))
    return resolve(
        repo=repo,
        user=user,
        project_file=project_file,
        cli=cli,
        project_name_override=project,
        user_path=paths.config_file,
        project_path=project_file_path(repo),
    )
