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
    """Load the user and project config files and merge them with the command line's settings."""
    return resolve(
        repo=repo,
        user=load_user_file(paths.config_file),
        project_file=load_project_file(repo),
        cli=cli,
        project_name_override=project,
        user_path=paths.config_file,
        project_path=project_file_path(repo),
    )
