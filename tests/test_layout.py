"""The repository's own files: a script must be able to import the standard library."""

from __future__ import annotations

import sys

from helpers import REPO_ROOT


def test_no_module_beside_a_script_is_named_after_the_standard_library() -> None:
    # A script's dir comes first on its sys.path: bench/queue.py once made `python bench/layers.py`
    # fail inside the standard library (`module 'queue' has no attribute 'LifoQueue'`). tests/ is on
    # the path of pytest and of bench/prewarm.py.
    shadowing = []
    for folder in ("bench", "scripts", "tests"):
        for path in sorted((REPO_ROOT / folder).iterdir()):
            name = path.stem if path.suffix == ".py" else path.name if (path / "__init__.py").exists() else None
            if name in sys.stdlib_module_names:
                shadowing.append(str(path.relative_to(REPO_ROOT)))
    assert not shadowing, f"named after a standard-library module: {shadowing}"
