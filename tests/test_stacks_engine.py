"""Every built-in stack builds through tsk and its toolchain compiles or runs a hello-world inside the
image; the agent binaries start; the proxy image's Squid accepts its configuration. Slow on a cold
machine (it builds every stack), but part of the default run."""

from __future__ import annotations

import subprocess

import pytest
from helpers import make_repo
from stack_checks import AGENT_VERSION, HELLO

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STACKS = ["default", "python", "node", "go", "rust", "java", "lua"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, engine):  # type: ignore[no-untyped-def]
    """Every stack with the exec agent, plus the claude and codex agents and the proxy, built by tsk."""
    from tsk.context import Context
    from tsk.layers import service

    repo = make_repo(tmp_path_factory.mktemp("stacks") / "repo")
    ctx = Context(cwd=repo)
    report = service.build(ctx, service.TargetRequest(all_stacks=True, agents=("exec",)))
    agents = service.build(ctx, service.TargetRequest(stacks=("default",), agents=("claude", "codex"), proxy=False))
    ctx.index.close()
    images: dict[str, str] = {}
    for r in [*report.layers, *agents.layers]:
        images[f"{r.kind}/{r.name}"] = r.image
    return images


def test_the_built_in_stacks_are_the_seven(built) -> None:  # type: ignore[no-untyped-def]
    assert sorted(k.split("/")[1] for k in built if k.startswith("stack/")) == sorted(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_toolchain_runs_hello_world(built, stack: str) -> None:  # type: ignore[no-untyped-def]
    # As a uid that is neither root nor the image's `agent` user: tsk runs sandboxes as the host's uid.
    for uid in ("1000:1000", "4242:4242"):
        res = subprocess.run(["docker", "run", "--rm", "--network", "none", "-u", uid, "-e", "HOME=/tmp/h",
                              built[f"stack/{stack}"], *HELLO[stack]], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert res.stdout.strip().splitlines()[-1] == f"hello from {stack}"


@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_agent_binary_starts(built, agent: str) -> None:  # type: ignore[no-untyped-def]
    res = subprocess.run(["docker", "run", "--rm", "--network", "none", "-u", "1000:1000", "-e", "HOME=/tmp/h",
                          built[f"agent/{agent}"], *AGENT_VERSION[agent]], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert any(ch.isdigit() for ch in res.stdout)


def test_base_trusts_the_host_extra_cas_and_grants_no_sudo(built) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    host = sorted(p.name for p in Path("/usr/local/share/ca-certificates").glob("*.crt"))
    res = subprocess.run(["docker", "run", "--rm", "--network", "none", built["base/base"], "bash", "-c",
                          "ls /usr/local/share/ca-certificates/tsk/; id agent; "
                          "sudo -n -l -U agent 2>&1 || true"], capture_output=True, text=True, check=True)
    for name in host:
        assert name in res.stdout
    assert "uid=1000(agent)" in res.stdout
    assert "not allowed" in res.stdout


def test_proxy_image_config_parses(built) -> None:  # type: ignore[no-untyped-def]
    res = subprocess.run(["docker", "run", "--rm", "--network", "none", built["proxy/proxy"], "squid", "-k", "parse"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
