"""The config subsystem: loading, validation errors, detection and the priority merge."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsk.config import (
    EnvVar,
    ProjectFile,
    ProjectSettings,
    ResolvedConfig,
    SlotConfig,
    UserFile,
    Volume,
    detect_stack,
    load_config,
    load_project_file,
    load_user_file,
    project_name,
    resolve,
)
from tsk.errors import ConfigError
from tsk.paths import Paths


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path



def _trusted_load(repo: Path, paths: Paths, **kwargs: object) -> ResolvedConfig:
    """load_config for a project file the user has trusted: these tests are about merging; trust has
    its own (tests/test_trust.py)."""
    from tsk.config import trust
    from tsk.config.load import project_file_path

    if project_file_path(repo).is_file():
        user, project = load_user_file(paths.config_file), load_project_file(repo)
        trust.trust(trust.state(repo, project_file_path(repo), project, user, "x", paths.data), paths.data)
    return load_config(repo, paths, **kwargs)  # type: ignore[arg-type]

@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project dir with nothing in it, not even git: what these tests add is all there is to find
    (the conftest `repo` has a project file that would set the stack)."""
    path = tmp_path / "myapp"
    path.mkdir()
    return path


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(config=tmp_path / "cfg" / "tsk", data=tmp_path / "data", cache=tmp_path / "cache",
                 runtime=tmp_path / "run")


def user_file(paths: Paths, text: str) -> Path:
    return write(paths.config_file, text)


def project_file(repo: Path, text: str) -> Path:
    return write(repo / ".tsk" / "tsk.toml", text)


def config_error(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    assert excinfo.value.exit_code == 2
    return str(excinfo.value)


# ---------------------------------------------------------------- loading


def test_missing_files_are_empty(repo: Path, paths: Paths) -> None:
    assert load_user_file(paths.config_file) == UserFile()
    assert load_project_file(repo) == ProjectFile()


def test_builtin_defaults(repo: Path, paths: Paths) -> None:
    cfg = _trusted_load(repo, paths)
    assert (cfg.project, cfg.agent, cfg.stack, cfg.stack_detected) == ("myapp", "claude", "default", False)
    assert (cfg.memory_gb, cfg.cpu, cfg.setup, cfg.squid_conf) == (12.0, 8.0, None, None)
    assert not (cfg.sudo or cfg.privileged or cfg.dind or cfg.git_town)
    assert (cfg.volumes, cfg.env, cfg.host_ports, cfg.devices) == ((), (), (), ())
    assert cfg.container_engine == "docker"
    assert (cfg.server.auto_clean_enabled, cfg.server.auto_clean_age_days) == (True, 7.0)
    layers = cfg.layers
    assert (layers.base_image, layers.registry, layers.ca_certs) == ("debian:trixie", None, "auto")
    assert cfg.sources["agent"] == cfg.sources["volumes"] == cfg.sources["layers.base_image"] == "built-in"


def test_full_user_file_loads(repo: Path, paths: Paths) -> None:
    user_file(paths, '''
        container_engine = "docker"
        [server]
        auto_clean_enabled = false
        auto_clean_age_days = 3
        [layers]
        base_image = "debian:bookworm"
        registry = "registry.example.com/team/tsk"
        ca_certs = []
        [defaults]
        agent = "codex"
        memory_gb = 16
        [project.myapp]
        stack = "go"
        cpu = 16
        host_ports = [5432, 6379]
        setup = """
        RUN apt-get update
        """
        devices = ["/dev/fuse"]
        volumes = [
            { host = "~/.cache/go-mod", container = "/go/pkg/mod" },
            { name = "go-build-cache", container = "/home/agent/.cache/go-build" },
            { host = "/etc/ssl/certs", container = "/etc/ssl/certs", readonly = true },
        ]
        env = [ { name = "DATABASE_URL", value = "postgres://tsk-proxy:5432/mydb" } ]
        [project.myapp.stack_config.go]
        setup = "RUN go install golang.org/x/tools/gopls@latest"
        [project.myapp.agent_config.codex]
        setup = "RUN true"
    ''')
    cfg = _trusted_load(repo, paths)
    home = Path.home()
    assert (cfg.agent, cfg.stack, cfg.memory_gb, cfg.cpu) == ("codex", "go", 16.0, 16.0)
    assert cfg.setup == "RUN apt-get update\n"
    assert cfg.host_ports == (5432, 6379)
    assert cfg.volumes == (
        Volume(host=str(home / ".cache/go-mod"), container="/go/pkg/mod"),
        Volume(name="go-build-cache", container="/home/agent/.cache/go-build"),
        Volume(host="/etc/ssl/certs", container="/etc/ssl/certs", readonly=True),
    )
    assert cfg.env == (EnvVar(name="DATABASE_URL", value="postgres://tsk-proxy:5432/mydb"),)
    assert cfg.stack_setup() == "RUN go install golang.org/x/tools/gopls@latest"
    assert cfg.agent_setup() == "RUN true"
    assert not cfg.server.auto_clean_enabled
    assert cfg.server.auto_clean_age_days == 3.0
    assert cfg.layers.ca_certs == ()
    assert cfg.layers.registry == "registry.example.com/team/tsk"


def test_resolved_config_round_trips_as_json(repo: Path, paths: Paths) -> None:
    project_file(repo, '''
        volumes = [{ name = "cache", container = "/c" }]
        [stack_config.go]
        setup = "RUN true"
        [layers]
        ca_certs = ["certs"]
    ''')
    cfg = _trusted_load(repo, paths, cli=ProjectSettings(host_ports=(80,)))
    assert msgspec.json.decode(msgspec.json.encode(cfg), type=ResolvedConfig) == cfg
    assert cfg.repo_path == repo


def test_project_file_top_level_keys(repo: Path, paths: Paths) -> None:
    project_file(repo, '''
        agent = "codex"
        stack = "rust"
        sudo = true
        privileged = true
        dind = true
        git_town = true
        squid_conf = "http_access allow all"
    ''')
    cfg = _trusted_load(repo, paths)
    assert (cfg.agent, cfg.stack, cfg.sudo, cfg.privileged, cfg.dind, cfg.git_town) == (
        "codex", "rust", True, True, True, True)
    assert cfg.squid_conf == "http_access allow all"
    assert cfg.sources["agent"] == ".tsk/tsk.toml"


# ---------------------------------------------------------------- priority

LEVELS = ["cli", "user [project.myapp]", ".tsk/tsk.toml", "user [defaults]"]


def build(repo: Path, values: dict[str, ProjectSettings]) -> ResolvedConfig:
    """Resolve with settings placed at the named levels (LEVELS)."""
    project = values.get("user [project.myapp]")
    user = UserFile(defaults=values.get("user [defaults]"), project={"myapp": project} if project else None)
    pf = values.get(".tsk/tsk.toml")
    return resolve(
        repo=repo,
        user=user,
        project_file=ProjectFile(**msgspec.structs.asdict(pf)) if pf else ProjectFile(),
        cli=values.get("cli"),
    )


@pytest.mark.parametrize("winner", range(len(LEVELS)))
def test_each_level_beats_the_next(repo: Path, winner: int) -> None:
    (repo / "go.mod").touch()
    values = {level: ProjectSettings(agent=f"agent{i}", memory_gb=float(i + 1), sudo=bool(i % 2))
              for i, level in enumerate(LEVELS) if i >= winner}
    cfg = build(repo, values)
    assert cfg.agent == f"agent{winner}"
    assert cfg.memory_gb == float(winner + 1)
    assert cfg.sudo is bool(winner % 2)
    assert cfg.sources["agent"] == cfg.sources["memory_gb"] == LEVELS[winner]


SIX_LEVELS = [*LEVELS, "detected", "built-in"]


@pytest.mark.parametrize("winner", range(len(SIX_LEVELS)))
def test_stack_across_all_six_levels(repo: Path, winner: int) -> None:
    if winner <= SIX_LEVELS.index("detected"):
        (repo / "Cargo.toml").touch()
    values = {level: ProjectSettings(stack=f"stack{i}") for i, level in enumerate(LEVELS) if i >= winner}
    cfg = build(repo, values)
    expected = {"detected": "rust", "built-in": "default"}.get(SIX_LEVELS[winner], f"stack{winner}")
    assert cfg.stack == expected
    assert cfg.sources["stack"] == SIX_LEVELS[winner]
    assert cfg.stack_detected is (SIX_LEVELS[winner] == "detected")


def test_defaults_beat_detection_and_detection_beats_builtin(repo: Path) -> None:
    (repo / "package.json").touch()
    assert build(repo, {}).stack == "node"
    assert build(repo, {"user [defaults]": ProjectSettings(stack="go")}).stack == "go"


def test_project_name_override_picks_the_user_project(repo: Path) -> None:
    user = UserFile(project={"other": ProjectSettings(agent="codex"), "myapp": ProjectSettings(agent="x")})
    cfg = resolve(repo=repo, user=user, project_file=ProjectFile(), project_name_override="other")
    assert (cfg.project, cfg.agent, cfg.sources["agent"]) == ("other", "codex", "user [project.other]")


def test_user_project_table_matches_by_cleaned_name(tmp_path: Path) -> None:
    repo = tmp_path / "MyApp"
    repo.mkdir()
    user = UserFile(project={"MyApp": ProjectSettings(cpu=3)})
    assert resolve(repo=repo, user=user, project_file=ProjectFile()).cpu == 3.0


def test_two_user_project_tables_for_one_project_is_an_error(tmp_path: Path) -> None:
    repo = tmp_path / "MyApp"
    repo.mkdir()
    user = UserFile(project={"MyApp": ProjectSettings(), "MYAPP": ProjectSettings()})
    with pytest.raises(ConfigError) as excinfo:
        resolve(repo=repo, user=user, project_file=ProjectFile(), user_path=tmp_path / "u.toml")
    assert "[project.MyApp], [project.MYAPP]" in config_error(excinfo)


SCALARS = {
    "agent": st.sampled_from(["claude", "codex", "exec"]),
    "stack": st.sampled_from(["rust", "python", "mylang"]),
    "memory_gb": st.floats(min_value=0.5, max_value=512),
    "cpu": st.integers(min_value=1, max_value=64).map(float),
    "setup": st.text(max_size=5),
    "sudo": st.booleans(),
    "git_town": st.booleans(),
}


@given(
    levels=st.lists(st.fixed_dictionaries({}, optional=SCALARS), min_size=4, max_size=4),
    detectable=st.booleans(),
)
def test_merge_takes_the_highest_priority_value(levels: list[dict[str, object]], detectable: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "myapp"
        repo.mkdir()
        if detectable:
            (repo / "go.mod").touch()
        cfg = build(repo, {LEVELS[i]: ProjectSettings(**level)  # type: ignore[arg-type]
                           for i, level in enumerate(levels)})
    for key in SCALARS:
        setters = [i for i, level in enumerate(levels) if key in level]
        if setters:
            assert getattr(cfg, key) == levels[setters[0]][key]
            assert cfg.sources[key] == LEVELS[setters[0]]
        elif key == "stack" and detectable:
            assert (cfg.stack, cfg.sources[key], cfg.stack_detected) == ("go", "detected", True)
        else:
            assert cfg.sources[key] == "built-in"
    assert cfg.stack_detected is (cfg.sources["stack"] == "detected")


# ---------------------------------------------------------------- lists


def test_volumes_combine_and_higher_priority_wins_on_container(repo: Path) -> None:
    cfg = build(repo, {
        "cli": ProjectSettings(volumes=(Volume(name="cli", container="/data"),)),
        ".tsk/tsk.toml": ProjectSettings(volumes=(Volume(host="/p", container="/data/"),
                                                  Volume(host="/p2", container="/other"))),
        "user [defaults]": ProjectSettings(volumes=(Volume(name="d", container="/other"),
                                                    Volume(name="d2", container="/third"))),
    })
    assert cfg.volumes == (Volume(name="cli", container="/data"), Volume(host="/p2", container="/other"),
                           Volume(name="d2", container="/third"))
    assert cfg.sources["volumes"] == "cli, .tsk/tsk.toml, user [defaults]"


def test_env_combines_and_higher_priority_wins_on_name(repo: Path) -> None:
    cfg = build(repo, {
        "user [project.myapp]": ProjectSettings(env=(EnvVar(name="A", value="project"),)),
        "user [defaults]": ProjectSettings(env=(EnvVar(name="A", value="default"),
                                                EnvVar(name="B", value="b"))),
    })
    assert cfg.env == (EnvVar(name="A", value="project"), EnvVar(name="B", value="b"))


def test_host_ports_and_devices_combine_without_duplicates(repo: Path) -> None:
    cfg = build(repo, {
        "cli": ProjectSettings(host_ports=(5432,), devices=("/dev/fuse",)),
        ".tsk/tsk.toml": ProjectSettings(host_ports=(6379, 5432), devices=("/dev/kvm", "/dev/fuse")),
        "user [defaults]": ProjectSettings(host_ports=(5432, 80, 80)),
    })
    assert cfg.host_ports == (5432, 6379, 80)
    assert cfg.devices == ("/dev/fuse", "/dev/kvm")


def test_stack_and_agent_config_merge_per_name(repo: Path) -> None:
    cfg = build(repo, {
        "user [project.myapp]": ProjectSettings(stack="go",
                                                stack_config={"go": SlotConfig(setup="RUN project")}),
        ".tsk/tsk.toml": ProjectSettings(stack_config={"go": SlotConfig(setup="RUN file"),
                                                       "mylang": SlotConfig(setup="RUN mine")},
                                         agent_config={"claude": SlotConfig(setup="RUN c")}),
        "user [defaults]": ProjectSettings(stack_config={"rust": SlotConfig(setup="RUN rust")}),
    })
    assert cfg.stack_config == {"go": SlotConfig(setup="RUN project"), "mylang": SlotConfig(setup="RUN mine"),
                                "rust": SlotConfig(setup="RUN rust")}
    assert cfg.stack_setup() == "RUN project"
    assert cfg.agent_setup() == "RUN c"
    assert cfg.sources["stack_config.go"] == "user [project.myapp]"
    assert cfg.sources["stack_config.rust"] == "user [defaults]"


def test_relative_volume_host_is_relative_to_the_file(repo: Path, paths: Paths) -> None:
    project_file(repo, 'volumes = [{ host = "../data", container = "/data" }]')
    user_file(paths, '[defaults]\nvolumes = [{ host = "cache", container = "/cache" }]')
    cfg = _trusted_load(repo, paths)
    assert {v.host for v in cfg.volumes} == {str(repo / "data"), str(paths.config / "cache")}


# ---------------------------------------------------------------- [layers]


def test_layers_project_file_beats_user_file_per_key(repo: Path, paths: Paths) -> None:
    user_file(paths, '''
        [layers]
        base_image = "debian:bookworm"
        registry = "reg.example.com/user"
        ca_certs = ["~/certs/corp.crt", "extra"]
    ''')
    project_file(repo, '[layers]\nregistry = "reg.example.com/project"')
    cfg = _trusted_load(repo, paths)
    assert cfg.layers.base_image == "debian:bookworm"
    assert cfg.layers.registry == "reg.example.com/project"
    assert cfg.layers.ca_certs == (str(Path.home() / "certs/corp.crt"), str(paths.config / "extra"))
    assert cfg.sources["layers.registry"] == ".tsk/tsk.toml [layers]"
    assert cfg.sources["layers.base_image"] == "user [layers]"


def test_layers_project_ca_certs_relative_to_project_file(repo: Path, paths: Paths) -> None:
    user_file(paths, '[layers]\nca_certs = ["x"]')
    project_file(repo, '[layers]\nca_certs = ["ca.pem"]\nbase_image = "ubuntu:24.04"')
    cfg = _trusted_load(repo, paths)
    assert cfg.layers.ca_certs == (str(repo / ".tsk" / "ca.pem"),)
    assert cfg.layers.base_image == "ubuntu:24.04"


# ---------------------------------------------------------------- squid


def test_squid_conf_path_is_read_relative_to_the_file(repo: Path, paths: Paths) -> None:
    write(repo / ".tsk" / "squid.conf", "acl x\n")
    project_file(repo, 'squid_conf_path = "squid.conf"')
    user_file(paths, '[defaults]\nsquid_conf = "from defaults"')
    cfg = _trusted_load(repo, paths)
    assert cfg.squid_conf == "acl x\n"
    assert cfg.sources["squid_conf"].startswith(".tsk/tsk.toml")


def test_squid_conf_path_expands_home(repo: Path, paths: Paths) -> None:
    write(Path.home() / "squid.conf", "home conf")
    user_file(paths, '[project.myapp]\nsquid_conf_path = "~/squid.conf"')
    assert _trusted_load(repo, paths).squid_conf == "home conf"


def test_squid_conf_beats_lower_priority_squid_conf_path(repo: Path, paths: Paths) -> None:
    user_file(paths, '[project.myapp]\nsquid_conf = "inline"\n[defaults]\nsquid_conf_path = "/missing"')
    assert _trusted_load(repo, paths).squid_conf == "inline"


def test_squid_conf_path_missing_file(repo: Path, paths: Paths) -> None:
    path = user_file(paths, '[project.myapp]\nsquid_conf_path = "nope.conf"')
    with pytest.raises(ConfigError) as excinfo:
        _trusted_load(repo, paths)
    message = config_error(excinfo)
    assert str(path) in message
    assert "`squid_conf_path` in [project.myapp]" in message
    assert str(paths.config / "nope.conf") in message


def test_squid_conf_and_path_in_one_source(repo: Path) -> None:
    path = project_file(repo, 'squid_conf = "x"\nsquid_conf_path = "y"')
    with pytest.raises(ConfigError) as excinfo:
        load_project_file(repo)
    message = config_error(excinfo)
    assert str(path) in message
    assert "squid_conf" in message
    assert "squid_conf_path" in message


# ---------------------------------------------------------------- detection and names


@pytest.mark.parametrize(("raw", "expected"), [
    ("myapp", "myapp"),
    ("MyApp", "myapp"),
    ("my app", "my-app"),
    ("my   app!!v2", "my-app-v2"),
    ("Café Crème", "caf-cr-me"),
    ("日本語", "project"),
    ("--.hidden.-", "hidden"),
    ("a.b_c-d", "a.b_c-d"),
    ("...", "project"),
])
def test_project_name_cleaning(tmp_path: Path, raw: str, expected: str) -> None:
    assert project_name(tmp_path / raw) == expected


def test_project_name_of_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Repo X").mkdir()
    monkeypatch.chdir(tmp_path / "Repo X")
    assert project_name(Path(".")) == "repo-x"


@pytest.mark.parametrize(("marker", "stack"), [
    ("Cargo.toml", "rust"),
    ("foo-1.0-1.rockspec", "lua"),
    (".luacheckrc", "lua"),
    ("init.lua", "lua"),
    ("pyproject.toml", "python"),
    ("requirements.txt", "python"),
    ("setup.py", "python"),
    ("package.json", "node"),
    ("go.mod", "go"),
    ("pom.xml", "java"),
    ("build.gradle", "java"),
    ("build.gradle.kts", "java"),
])
def test_detect_stack_rules(repo: Path, marker: str, stack: str) -> None:
    (repo / marker).touch()
    assert detect_stack(repo) == stack


@pytest.mark.parametrize(("markers", "stack"), [
    (["Cargo.toml", "pyproject.toml"], "rust"),
    (["init.lua", "package.json"], "lua"),
    (["setup.py", "package.json"], "python"),
    (["package.json", "go.mod"], "node"),
    (["go.mod", "pom.xml"], "go"),
])
def test_detect_stack_precedence(repo: Path, markers: list[str], stack: str) -> None:
    for marker in markers:
        (repo / marker).touch()
    assert detect_stack(repo) == stack


def test_detect_stack_nothing(repo: Path) -> None:
    (repo / "README.md").touch()
    (repo / "sub").mkdir()
    (repo / "sub" / "Cargo.toml").touch()
    assert detect_stack(repo) is None
    assert detect_stack(repo / "missing") is None


# ---------------------------------------------------------------- errors


def test_malformed_toml(repo: Path, paths: Paths) -> None:
    path = user_file(paths, '[defaults]\nagent = "claude"\ncpu = = 4\n')
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(path)
    message = config_error(excinfo)
    assert str(path) in message
    assert "line 3" in message
    assert "column" in message


def test_not_utf8(paths: Paths) -> None:
    paths.config.mkdir(parents=True)
    paths.config_file.write_bytes(b'agent = "\xff"')
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(paths.config_file)
    assert "UTF-8" in config_error(excinfo)


@pytest.mark.parametrize(("text", "table", "key", "suggestion"), [
    ("[project.myapp]\nagnet = 'claude'", "[project.myapp]", "agnet", "agent"),
    ("[defaults]\nmemroy_gb = 4", "[defaults]", "memroy_gb", "memory_gb"),
    ("contaner_engine = 'docker'", "at the top level", "contaner_engine", "container_engine"),
    ("[server]\nauto_clean = true", "[server]", "auto_clean", "auto_clean_enabled"),
    ("[layers]\nbase = 'x'", "[layers]", "base", "base_image"),
    ("[project.myapp]\nvolumes = [{ host = '/a', container = '/b', readnoly = true }]",
     "[project.myapp.volumes[0]]", "readnoly", "readonly"),
    ("[project.myapp.stack_config.go]\nsetpu = 'x'", "[project.myapp.stack_config.go]", "setpu", "setup"),
    ("[project.\"my.app\"]\nstak = 'go'", '[project."my.app"]', "stak", "stack"),
])
def test_unknown_key_in_user_file(paths: Paths, text: str, table: str, key: str, suggestion: str) -> None:
    path = user_file(paths, text)
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(path)
    message = config_error(excinfo)
    assert str(path) in message
    assert f"unknown key `{key}` {table}" in message or f"unknown key `{key}` in {table}" in message
    assert f"did you mean `{suggestion}`?" in message


def test_unknown_key_without_a_near_match(paths: Paths) -> None:
    path = user_file(paths, "[defaults]\nzzzzzz = 1")
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(path)
    message = config_error(excinfo)
    assert "unknown key `zzzzzz` in [defaults]" in message
    assert "did you mean" not in message
    assert "valid keys in [defaults]: agent" in message


def test_unknown_key_in_project_file(repo: Path) -> None:
    path = project_file(repo, "agnet = 'claude'\n[layers]\nregistry = 'r'")
    with pytest.raises(ConfigError) as excinfo:
        load_project_file(repo)
    message = config_error(excinfo)
    assert str(path) in message
    assert "unknown key `agnet` at the top level; did you mean `agent`?" in message


def test_project_file_refuses_user_only_tables(repo: Path) -> None:
    project_file(repo, "[defaults]\nagent = 'claude'")
    with pytest.raises(ConfigError) as excinfo:
        load_project_file(repo)
    assert "unknown key `defaults`" in config_error(excinfo)


@pytest.mark.parametrize(("text", "fragment"), [
    ("[defaults]\nmemory_gb = 'lots'", '`memory_gb` in [defaults] must be a number, got string "lots"'),
    ("[defaults]\ncpu = true", "`cpu` in [defaults] must be a number, got boolean true"),
    ("[defaults]\nsudo = 'yes'", '`sudo` in [defaults] must be a boolean (true or false), got string "yes"'),
    ("[defaults]\nagent = 3", "`agent` in [defaults] must be a string, got integer 3"),
    ("[defaults]\nhost_ports = 5432",
     "`host_ports` in [defaults] must be a list of integers, got integer 5432"),
    ("[defaults]\nhost_ports = [80, '443']",
     '`host_ports[1]` in [defaults] must be an integer, got string "443"'),
    ("[defaults]\nhost_ports = [80.5]", "`host_ports[0]` in [defaults] must be an integer, got number 80.5"),
    ("[defaults]\nvolumes = { host = '/a', container = '/b' }",
     "`volumes` in [defaults] must be a list of tables, got a table"),
    ("[project.myapp]\nvolumes = [{ host = 1, container = '/b' }]",
     "`host` in [project.myapp.volumes[0]] must be a string, got integer 1"),
    ("[project.myapp]\nstack_config = 'go'",
     '`stack_config` in [project.myapp] must be a table, got string "go"'),
    ("defaults = 1", "`defaults` at the top level must be a table, got integer 1"),
    ("project = []", "`project` at the top level must be a table, got a list"),
    ("container_engine = 'podmn'", '`container_engine` at the top level must be one of "docker", "podman"'),
    ("[layers]\nca_certs = '/etc/ssl/corp.pem'",
     '`ca_certs` in [layers] must be "auto" or a list of strings'),
    ("[layers]\nca_certs = [1]", "`ca_certs[0]` in [layers] must be a string, got integer 1"),
    ("[server]\nauto_clean_age_days = 1979-05-27", "must be a number, got date 1979-05-27"),
])
def test_wrong_type(paths: Paths, text: str, fragment: str) -> None:
    path = user_file(paths, text)
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(path)
    message = config_error(excinfo)
    assert str(path) in message
    assert fragment in message


def test_wrong_type_never_echoes_env_values(paths: Paths) -> None:
    user_file(paths, "[defaults]\nenv = [{ name = 'TOKEN', value = 123456 }]")
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(paths.config_file)
    message = config_error(excinfo)
    assert "`value` in [defaults.env[0]] must be a string, got integer" in message
    assert "123456" not in message


@pytest.mark.parametrize(("text", "fragment"), [
    ("[defaults]\nmemory_gb = 0", "`memory_gb` in [defaults] must be a number greater than 0, got 0"),
    ("[defaults]\nmemory_gb = -1.5", "`memory_gb` in [defaults] must be a number greater than 0"),
    ("[defaults]\nmemory_gb = nan", "`memory_gb` in [defaults] must be a number greater than 0"),
    ("[project.myapp]\ncpu = 0", "`cpu` in [project.myapp] must be a number greater than 0"),
    ("[defaults]\nhost_ports = [0]", "`host_ports[0]` in [defaults] must be a port from 1 to 65535, got 0"),
    ("[defaults]\nhost_ports = [80, 65536]", "`host_ports[1]` in [defaults] must be a port from 1 to 65535"),
    ("[defaults]\nvolumes = [{ container = '/b' }]",
     "`volumes[0]` in [defaults] needs exactly one of `host` (a host path) or `name`"),
    ("[defaults]\nvolumes = [{ host = '/a', name = 'v', container = '/b' }]",
     "`volumes[0]` in [defaults] needs exactly one of `host`"),
    ("[defaults]\nvolumes = [{ host = '/a' }]", "missing key `container` in [defaults.volumes[0]]"),
    ("[defaults]\nvolumes = [{ host = '/a', container = 'b' }]",
     '`container` in [defaults.volumes[0]] must be an absolute path in the container, got "b"'),
    ("[defaults]\nvolumes = [{ name = 'a b', container = '/b' }]", "is not a valid volume name"),
    ("[defaults]\nvolumes = [{ name = 'a', container = '/b' }, { name = 'c', container = '/b/' }]",
     "`volumes[1]` in [defaults] mounts on /b, which an earlier entry already uses"),
    ("[defaults]\nenv = [{ name = 'A' }]", "missing key `value` in [defaults.env[0]]"),
    ("[defaults]\nenv = [{ value = 'x' }]", "missing key `name` in [defaults.env[0]]"),
    ("[defaults]\nenv = [{ name = 'A=B', value = 'x' }]", "is not a valid environment variable name"),
    ("[defaults]\nenv = [{ name = 'A', value = 'x' }, { name = 'A', value = 'y' }]", "sets A a second time"),
    ("[defaults]\ndevices = ['fuse']", '`devices[0]` in [defaults] must be an absolute device path'),
    ("[project.myapp]\nsquid_conf = 'x'\nsquid_conf_path = 'y'",
     "`squid_conf` in [project.myapp] and `squid_conf_path` are both set"),
    ("[defaults]\nagent = 'Claude Code'", '`agent` in [defaults] is not a valid name'),
    ("[defaults.stack_config.'../x']\nsetup = 'x'",
     '`"../x"` in [defaults.stack_config] is not a valid name'),
    ("[layers]\nregistry = 'https://reg.example.com/x'", "`registry` in [layers] must be an OCI repository"),
    ("[layers]\nbase_image = ''", "`base_image` in [layers] must not be empty"),
    ("[server]\nauto_clean_age_days = -1", "`auto_clean_age_days` in [server] must be a number of days >= 0"),
])
def test_invalid_value(paths: Paths, text: str, fragment: str) -> None:
    path = user_file(paths, text)
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(path)
    message = config_error(excinfo)
    assert str(path) in message
    assert fragment in message


def test_invalid_value_in_project_file(repo: Path) -> None:
    path = project_file(repo, "memory_gb = -4")
    with pytest.raises(ConfigError) as excinfo:
        load_project_file(repo)
    message = config_error(excinfo)
    assert str(path) in message
    assert "`memory_gb` at the top level must be a number greater than 0" in message


def test_invalid_cli_settings(repo: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        resolve(repo=repo, user=UserFile(), project_file=ProjectFile(), cli=ProjectSettings(cpu=-1))
    assert "`cpu` on the command line must be a number greater than 0" in config_error(excinfo)


def test_unreadable_config_path(paths: Paths) -> None:
    paths.config_file.mkdir(parents=True)
    with pytest.raises(ConfigError) as excinfo:
        load_user_file(paths.config_file)
    message = config_error(excinfo)
    assert str(paths.config_file) in message
    assert "cannot read" in message
