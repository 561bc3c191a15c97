"""Repository trust, the way direnv and mise do it (DESIGN §6).

A repository's own `.tsk/tsk.toml` is written by whoever wrote the repository. Keys that only narrow
the sandbox or shape its image (a stack, a built-in agent, `setup`, less memory) apply at once; keys
that widen it or choose what runs with the user's credentials take effect only after the user has
run `tsk trust` for that file's exact content. The record is the file's digest (with the digests of
the files it names: a squid.conf, CA certificates) per repository, kept in the user's data dir."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import msgspec

from tsk.config.schema import ProjectFile, UserFile
from tsk.errors import ConfigError

TRUST_FILE = "trust.json"
BUILT_IN_AGENTS = ("claude", "codex", "exec")


class TrustRecord(msgspec.Struct, frozen=True, kw_only=True):
    digest: str
    keys: tuple[str, ...]
    trusted_at: float


class TrustState(msgspec.Struct, frozen=True, kw_only=True):
    """What `tsk trust --show` prints: the project file, the keys that need trust, and whether the
    file as it is now is trusted."""

    repo: str
    path: str
    exists: bool
    digest: str
    keys: tuple[str, ...]  # the widening keys, as dotted names
    trusted: bool  # this exact content was trusted
    trusted_before: bool  # some earlier content of it was (the file changed since)


def widening_keys(project: ProjectFile, user: UserFile, project_name: str) -> list[str]:
    """The keys of the project file that widen the sandbox or pick what runs with the user's
    credentials. Values that narrow (false, empty, less memory) need no trust."""
    keys: list[str] = []
    for i, vol in enumerate(project.volumes or ()):
        if vol.host is not None:
            keys.append(f"volumes[{i}].host")
    for name in ("devices", "host_ports", "env"):
        if getattr(project, name):
            keys.append(name)
    for name in ("privileged", "sudo", "dind"):
        if getattr(project, name):
            keys.append(name)
    for name in ("squid_conf", "squid_conf_path", "review_command"):
        if getattr(project, name) is not None:
            keys.append(name)
    for agent, slot in sorted((project.agent_config or {}).items()):
        if slot.setup:
            keys.append(f"agent_config.{agent}.setup")
    user_agents = {n for table in (user.defaults, *(user.project or {}).values()) if table is not None
                   for n, s in (table.agent_config or {}).items() if s.setup}
    if project.agent is not None and project.agent not in BUILT_IN_AGENTS and project.agent not in user_agents:
        keys.append("agent")
    own = (user.project or {}).get(project_name)
    for name, default in (("memory_gb", 12.0), ("cpu", 8.0), ("pids_limit", 4096), ("disk_gb", 20.0)):
        value = getattr(project, name)
        if value is None or (own is not None and getattr(own, name) is not None):
            continue  # unset here, or the user's [project.X] decides it
        baseline = getattr(user.defaults, name, None) if user.defaults is not None else None
        if value > (baseline if baseline is not None else default):
            keys.append(name)
    layers = project.layers
    if layers is not None:
        for name in ("registry", "ca_certs", "base_image"):
            if getattr(layers, name) is not None:
                keys.append(f"layers.{name}")
    return keys


def digest(project_path: Path, project: ProjectFile) -> str:
    """The project file's bytes, plus those of every file it names that changes what the keys mean."""
    h = hashlib.sha256()
    h.update(_read(project_path))
    base = project_path.parent
    named = [project.squid_conf_path] if project.squid_conf_path else []
    ca = project.layers.ca_certs if project.layers is not None else None
    if isinstance(ca, tuple):
        named.extend(ca)
    for raw in named:
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else base / path
        h.update(b"\0" + str(raw).encode() + b"\0")
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0" + _read(f))
    return h.hexdigest()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _store(data_dir: Path) -> Path:
    return data_dir / TRUST_FILE


def _records(data_dir: Path) -> dict[str, TrustRecord]:
    path = _store(data_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the trust records: {exc.strerror or exc}", path=str(path)) from exc
    try:
        return msgspec.json.decode(raw, type=dict[str, TrustRecord])
    except msgspec.DecodeError as exc:
        raise ConfigError(f"the trust records are damaged: {exc}", path=str(path),
                          hint="remove the file; then `tsk trust` each repository again") from exc


def _write(data_dir: Path, records: dict[str, TrustRecord]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = _store(data_dir)
    tmp = path.with_name(f".{TRUST_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(dict(sorted(records.items()))), indent=2))
    os.replace(tmp, path)


def repo_key(repo: Path) -> str:
    return os.path.realpath(repo)


def state(repo: Path, project_path: Path, project: ProjectFile, user: UserFile, project_name: str,
          data_dir: Path) -> TrustState:
    exists = project_path.is_file()
    keys = tuple(widening_keys(project, user, project_name)) if exists else ()
    now = digest(project_path, project) if exists else ""
    rec = _records(data_dir).get(repo_key(repo))
    return TrustState(repo=repo_key(repo), path=str(project_path), exists=exists, digest=now, keys=keys,
                      trusted=rec is not None and rec.digest == now, trusted_before=rec is not None)


def require(st: TrustState) -> None:
    """Refuse a project file whose widening keys the user has not trusted in this exact form."""
    if not st.keys or st.trusted:
        return
    why = "changed since you trusted it" if st.trusted_before else "is not trusted"
    raise ConfigError(
        f"this repository's config {why}, and it asks for keys that widen the sandbox or choose what runs "
        f"with your credentials: {', '.join(st.keys)}",
        path=st.path,
        hint=f"read it, then run `tsk trust` in {st.repo} (`tsk trust --show` lists what it would trust); "
             "or remove those keys",
    )


def trust(st: TrustState, data_dir: Path) -> None:
    if not st.exists:
        raise ConfigError("there is no project config to trust", path=st.path,
                          hint="tsk trust records a repository's .tsk/tsk.toml; this repository has none")
    records = _records(data_dir)
    records[st.repo] = TrustRecord(digest=st.digest, keys=st.keys, trusted_at=time.time())
    _write(data_dir, records)


def untrust(repo: Path, data_dir: Path) -> bool:
    records = _records(data_dir)
    if records.pop(repo_key(repo), None) is None:
        return False
    _write(data_dir, records)
    return True


def show_values(project: ProjectFile, keys: tuple[str, ...]) -> dict[str, object]:
    """The widening keys' values, for `tsk trust --show`; env values whose names look secret hidden."""
    from tsk.config.secrets import redact_env

    out: dict[str, object] = {}
    raw = msgspec.to_builtins(project)
    for key in keys:
        head = key.split("[", 1)[0].split(".", 1)[0]
        value = raw.get(head)
        if head == "env":
            value = [{"name": e["name"], "value": v} for e, v in
                     zip(value or [], redact_env({e["name"]: e["value"] for e in value or []}).values(), strict=True)]
        out[head] = value
    return out
