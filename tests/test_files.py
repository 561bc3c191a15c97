"""Task dirs are removable by the user who made them, also what an overlay mount left behind: the
kernel makes the workdir's `work/work` for dockerd (root's, mode 000), which a user who is not root
cannot list. Proven with a real overlay volume and a removal run as `nobody`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from helpers import BASE_IMAGE

NOBODY = 65534


def _overlay_leftovers(engine) -> Path:  # type: ignore[no-untyped-def]
    root = Path(tempfile.mkdtemp(prefix="tsk-files-"))
    root.chmod(0o755)
    for sub in ("lower", "upper", "work"):
        (root / sub).mkdir()
    (root / "lower" / "f").write_text("x\n")
    for p in (root, *root.iterdir()):
        os.chown(p, NOBODY, NOBODY)
    vol = f"tsk-test-overlay-{uuid.uuid4().hex[:8]}"
    opts = f"lowerdir={root}/lower,upperdir={root}/upper,workdir={root}/work"
    subprocess.run(["docker", "volume", "create", "-d", "local", "-o", "type=overlay", "-o", "device=overlay",
                    "-o", f"o={opts}", vol], check=True, capture_output=True)
    try:
        subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{vol}:/x", BASE_IMAGE,
                        "sh", "-c", "echo y > /x/g"], check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "volume", "rm", vol], check=False, capture_output=True)
    left = root / "work" / "work"
    assert left.is_dir() and left.stat().st_uid == 0 and (left.stat().st_mode & 0o777) == 0
    return root


def _as_nobody(code: str) -> None:
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", code],
                   check=True, capture_output=True, cwd="/")


def test_a_user_who_is_not_root_removes_what_an_overlay_left(engine) -> None:  # type: ignore[no-untyped-def]
    plain = _overlay_leftovers(engine)
    ours = _overlay_leftovers(engine)
    try:
        _as_nobody(f"import shutil; shutil.rmtree({str(plain / 'work')!r}, ignore_errors=True)")
        assert (plain / "work" / "work").exists()  # what stopped a non-root user before
        _as_nobody(f"from pathlib import Path; from tsk.files import remove_tree; remove_tree(Path({str(ours)!r}))")
        assert not ours.exists()
    finally:
        shutil.rmtree(plain, ignore_errors=True)
        shutil.rmtree(ours, ignore_errors=True)
