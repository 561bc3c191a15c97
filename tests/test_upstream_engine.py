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


@pytest.mark.docker
def test_review_queues_the_feedback_as_a_child_of_the_reviewed_task(tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(tmp_path / "rv", {"x": "1\n"})
    res = run_tsk("run", "--agent", "exec", "-n", "feat", "--json", "-p",
                  "echo 2 > x && git commit -qam two", cwd=repo)
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert done["status"] == "COMPLETE" and done["result_branch"]
    config = tsk_home / "config" / "tsk" / "tsk.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    # the command sees the reviewed range; here it writes its feedback to the file instead of stdout
    config.write_text("[defaults]\nreview_command = \"git diff --stat {{base}} {{version}} > {{review_file}}; "
                      "echo 'rename x to y' >> {{review_file}}\"\n")

    queued = run_tsk("review", done["id"], "--json", cwd=repo)
    assert queued.returncode == 0, queued.stderr
    task = json.loads(queued.stdout)[0]
    assert task["type"] == "tsk-review" and task["name"] == "feat-review1" and task["parents"] == [done["id"]]
    text = (tsk_home / "data" / "tsk" / "tasks" / task["id"] / "instructions.md").read_text()
    assert "rename x to y" in text and "1 file changed" in text and done["source_commit"][:12] in text

    # from the result branch itself, no ID needed; the next review is numbered on
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", done["result_branch"]], check=True)
    again = run_tsk("review", "--json", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["name"] == "feat-review2"

    # --base: the current branch against a ref, from the branch's head, no parent
    based = run_tsk("review", "--base", "trunk", "--json", cwd=repo)
    assert based.returncode == 0, based.stderr
    row = json.loads(based.stdout)[0]
    assert row["parents"] == [] and row["from_branch"] == done["result_branch"] and row["name"] == "review1"

    # what cannot be reviewed, said clearly; a failing command or empty feedback queues nothing
    for args, said in ((["review", task["id"]], "is QUEUED"), (["review", "nope"], "nope"),
                       (["review", done["id"], "--base", "trunk"], "not both")):
        bad = run_tsk(*args, cwd=repo)
        assert bad.returncode != 0 and said in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
    config.write_text("[defaults]\nreview_command = \"echo broken >&2; exit 3\"\n")
    bad = run_tsk("review", done["id"], cwd=repo)
    assert bad.returncode == 1 and "exited with code 3: broken" in bad.stderr
    config.write_text("[defaults]\nreview_command = \"true\"\n")
    empty = run_tsk("review", done["id"], "--json", cwd=repo)
    assert empty.returncode == 0 and "nothing queued" in empty.stderr and empty.stdout == ""
    listed = json.loads(run_tsk("list", "--json", cwd=repo).stdout)
    assert sorted(t["name"] for t in listed) == ["feat", "feat-review1", "feat-review2", "review1"]
