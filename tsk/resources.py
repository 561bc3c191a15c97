"""Where the built-in layer snippets and recipes live: inside the wheel (tsk/_data) or, in a source
checkout, at the repository's top level."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PKG.parent / name


def layers_dir() -> Path:
    return data_dir("layers")


def recipes_dir() -> Path:
    return data_dir("recipes")
