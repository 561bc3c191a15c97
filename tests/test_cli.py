"""The entry point: lazy command loading and the one error boundary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_repo, run_tsk

from tsk.cli.main import run


def test_help_imports_neither_the_docker_sdk_nor_python_on_whales() -> None:
    code = ("import sys\nfrom tsk.cli.main import run\nrun(['--help'])\nrun(['layers', '--help'])\n"
            "bad = [m for m in ('docker', 'python_on_whales', 'diskcache', 'tsk.cli.layers') if m in sys.modules]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "layers" in res.stdout and "build" in res.stdout


def test_in_process_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "0.1.0"


def test_version_is_what_cyclopts_prints_without_importing_it() -> None:
    quick = subprocess.run([sys.executable, "-c", "import sys\nfrom tsk.cli.main import run\nrun(['--version'])\n"
                            "assert 'cyclopts' not in sys.modules, 'imported cyclopts'\n"],
                           capture_output=True, text=True)
    full = subprocess.run([sys.executable, "-c", "from tsk.cli.app import app\napp(['--version'])"],
                          capture_output=True, text=True)
    assert quick.returncode == 0, quick.stderr
    assert quick.stdout == full.stdout == "0.1.0\n"


def test_help_is_plain_text_without_rich_markdown() -> None:
    code = ("import sys\nfrom tsk.cli.main import run\nrun(['--help'])\nrun(['layers', 'build', '--help'])\n"
            "assert 'rich.markdown' not in sys.modules and 'markdown_it' not in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "(`tsk docker build` =" in res.stdout  # as written, not rendered as markdown


def test_bad_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["layers", "build", "--no-such-flag"]) == 2


def test_bad_duration_is_exit_2_without_traceback(tmp_path: Path) -> None:
    res = run_tsk("layers", "prune", "--older-than", "soon", cwd=make_repo(tmp_path / "r"))
    assert res.returncode == 2
    assert "cannot read `soon` as a duration" in res.stderr and "Traceback" not in res.stderr


def test_tsk_debug_shows_the_traceback(tmp_path: Path) -> None:
    res = run_tsk("layers", "prune", "--older-than", "soon", cwd=make_repo(tmp_path / "r"), env={"TSK_DEBUG": "1"})
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_python_dash_m_and_console_script_agree() -> None:
    exe = Path(sys.executable).with_name("tsk")
    a = subprocess.run([sys.executable, "-m", "tsk", "--version"], capture_output=True, text=True)
    b = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert a.stdout == b.stdout == "0.1.0\n"
