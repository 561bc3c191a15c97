"""A project `setup` written for upstream tsk works unchanged: it starts as the agent user, may switch
to root and back, ends with `USER agent`, installs into the agent's home; the layers above it still
build as root, and what it put in the home is there in the task."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import make_repo, run_tsk, trust

from tsk.layers.upstream import as_upstream, written_for_upstream

UPSTREAM_SETUP = """
USER root
RUN printf '#!/bin/sh\\necho system-tool-ran\\n' > /usr/local/bin/systool && chmod 755 /usr/local/bin/systool
USER agent
RUN test "$(id -un)" = agent && mkdir -p ~/.local/bin \\
    && printf '#!/bin/sh\\necho home-tool-ran\\n' > ~/.local/bin/hometool && chmod +x ~/.local/bin/hometool \\
    && echo made-by-setup > ~/notes.txt
"""


def test_only_a_snippet_with_user_lines_is_taken_as_upstreams() -> None:
    assert not written_for_upstream("RUN apt-get update\n# USER agent is only a comment\n")
    assert written_for_upstream("RUN true\nuser agent\n")
    plain = "RUN apt-get update\n"
    assert as_upstream(plain) == plain  # tsk's own snippets run as root, as documented
    wrapped = as_upstream(UPSTREAM_SETUP).splitlines()
    assert wrapped.index("USER agent") < wrapped.index("USER root") - 1
    assert [ln for ln in wrapped if ln.startswith("USER")][-1] == "USER root"


@pytest.mark.docker
def test_an_upstream_setup_snippet_works_unchanged(tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    toml = 'stack = "default"\nsetup = \'\'\'' + UPSTREAM_SETUP + "'''\n"
    repo = make_repo(tmp_path / "up", {"x": "1\n", ".tsk/tsk.toml": toml})
    trust(repo)
    res = run_tsk("run", "--agent", "exec", "--json", "-p",
                  "systool && hometool && cat ~/notes.txt && echo uid=$(id -u)", cwd=repo)
    assert res.returncode == 0, res.stderr
    task = json.loads(res.stdout)
    log = (tsk_home / "data" / "tsk" / "tasks" / task["id"] / "log" / "agent.raw.log").read_text()
    assert "system-tool-ran" in log and "home-tool-ran" in log and "made-by-setup" in log, log[-2000:]
    # the layer above the snippet (the agent's) builds as root, whatever USER the snippet ended with
    images = run_tsk("layers", "ls", "--json", cwd=repo)
    assert images.returncode == 0, images.stderr
    project = [r for r in json.loads(images.stdout) if r.get("kind") == "project"]
    assert project, images.stdout
    for row in project:
        user = subprocess.run(["docker", "image", "inspect", "-f", "{{.Config.User}}", row["image"]],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert user in ("root", "", "0"), user


@pytest.mark.docker
def test_proxy_stop_stops_the_proxy_no_task_uses(tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(tmp_path / "px", {"x": "1\n"})
    res = run_tsk("run", "--agent", "exec", "--json", "-p", "true", cwd=repo)
    assert res.returncode == 0, res.stderr
    used = sorted(p.name[len("proxy-"):-len(".used")] for p in (tsk_home / "run" / "tsk").glob("proxy-*.used"))
    assert len(used) == 1, used  # the task went out through one proxy, which stays up while idle
    name = f"tsk-proxy-{used[0]}"
    state = engine.container_state(name)
    assert state is not None and state.running
    res = run_tsk("proxy", "stop", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"stopped": [name], "in_use": []}
    assert engine.container_state(name) is None
    again = run_tsk("proxy", "stop", cwd=repo)
    assert again.returncode == 0 and "stopped 0 proxy" in again.stdout
