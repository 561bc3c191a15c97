"""The host's extra CAs: which files are taken, and the content-addressed context dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsk.errors import ConfigError
from tsk.layers import ca

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_auto_takes_the_host_dir_crt_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "corp.crt").write_bytes(PEM)
    (tmp_path / "sub" / "lab.crt").write_bytes(PEM + b"\n")
    (tmp_path / "notes.txt").write_text("not a cert")
    assert [n for n, _ in ca.collect("auto", host_dir=tmp_path)] == ["corp.crt", "lab.crt"]
    assert ca.collect("auto", host_dir=tmp_path / "missing") == []


def test_explicit_list_and_none(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(PEM)
    assert [n for n, _ in ca.collect([str(tmp_path / "a.pem")])] == ["a.crt"]
    assert ca.collect([]) == []


def test_missing_and_non_pem_paths_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ca.collect([str(tmp_path / "nope.crt")])
    (tmp_path / "bad.crt").write_text("hello")
    with pytest.raises(ConfigError, match="not a PEM"):
        ca.collect([str(tmp_path / "bad.crt")])


def test_materialise_is_content_addressed(tmp_path: Path) -> None:
    one = ca.materialise([("a.crt", PEM)], tmp_path)
    assert one.name == "tsk-ca" and (one / "a.crt").read_bytes() == PEM and (one / "README").exists()
    assert ca.materialise([("a.crt", PEM)], tmp_path) == one
    assert ca.materialise([("a.crt", PEM + b"x")], tmp_path) != one
