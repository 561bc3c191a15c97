"""Read the two config files into their schema Structs. A missing file is an empty config; anything
else that is wrong with a file is a ConfigError naming the file, the key and what was expected."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from tsk.config.compat import upgrade_project_file, upgrade_user_file
from tsk.config.rules import check_layers, check_server, check_settings
from tsk.config.schema import ProjectFile, UserFile
from tsk.config.shape import check_shape
from tsk.errors import ConfigError

PROJECT_FILE = Path(".tsk") / "tsk.toml"

_S = TypeVar("_S", bound=msgspec.Struct)
notice = logging.getLogger("tsk.notice")  # one line the command prints to the user (tsk/cli/main.py)


def project_file_path(repo: Path) -> Path:
    return repo / PROJECT_FILE


def load_user_file(path: Path) -> UserFile:
    data = _read_toml(path)
    if data is None:
        return UserFile()
    where = str(path)
    data, renames = upgrade_user_file(data, where)
    _warn(where, renames)
    user = _convert(data, UserFile, where)
    if user.server is not None:
        check_server(user.server, ("server",), where)
    if user.layers is not None:
        check_layers(user.layers, ("layers",), where)
    if user.defaults is not None:
        check_settings(user.defaults, ("defaults",), where)
    for name, settings in (user.project or {}).items():
        check_settings(settings, ("project", name), where)
    return user


def load_project_file(repo: Path) -> ProjectFile:
    path = project_file_path(repo)
    data = _read_toml(path)
    if data is None:
        return ProjectFile()
    where = str(path)
    data, renames = upgrade_project_file(data, where)
    _warn(where, renames)
    project = _convert(data, ProjectFile, where)
    check_settings(project, (), where)
    if project.layers is not None:
        check_layers(project.layers, ("layers",), where)
    return project


_warned: set[str] = set()  # a file is read more than once in a process (a server reads it per task)


def _warn(where: str, renames: list[str]) -> None:
    """One line per file that uses upstream's old forms, once per process, naming each new form."""
    if not renames:
        return
    line = f"{where}: upstream's old config forms read as today's: {'; '.join(renames)} (write those to silence this)"
    if line not in _warned:
        _warned.add(line)
        notice.warning("%s", line)


def _read_toml(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", path=str(path)) from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib (3.11) puts "(at line X, column Y)" in the message and offers no attributes for it.
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc


def _convert(data: dict[str, Any], target: type[_S], where: str) -> _S:
    check_shape(data, target, path=where)
    try:
        return msgspec.convert(data, target)
    except msgspec.ValidationError as exc:
        # check_shape should have caught everything; never let a bad file through if it did not.
        raise ConfigError(f"invalid config: {exc}", path=where) from exc
