"""The host's extra certificate authorities, handed to the layers that need them.

Networks that inspect TLS with their own CA are common; the host trusts it (Debian keeps such CAs in
/usr/local/share/ca-certificates, the directory `update-ca-certificates` reads), a container does not
until the base layer installs them. The CA files are copied into a content-addressed directory that
snippets COPY as `tsk-ca/`, so their content is part of the key of every layer that COPYs them."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from tsk.errors import ConfigError
from tsk.layers.keys import digest_bytes

HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
CONTEXT_NAME = "tsk-ca"
_README = b"Extra CA certificates that tsk installs into sandbox images (see tsk's [layers] ca_certs).\n"


def collect(setting: str | Sequence[str], host_dir: Path = HOST_CA_DIR) -> list[tuple[str, bytes]]:
    """(file name, PEM bytes) for every CA the setting names, sorted by name. "auto" means the host's
    extra CA directory; a list names files or directories; an empty list means none."""
    paths: list[Path]
    if setting == "auto":
        paths = [host_dir] if host_dir.is_dir() else []
    elif isinstance(setting, str):
        paths = [Path(setting)]
    else:
        paths = [Path(p) for p in setting]
    found: dict[str, bytes] = {}
    for p in paths:
        if not p.exists():
            raise ConfigError(
                f"CA certificate path {p} does not exist",
                hint="fix `ca_certs` in the [layers] table of tsk.toml (\"auto\", a list of paths, or [])",
            )
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if f.suffix not in (".crt", ".pem"):
                continue
            data = f.read_bytes()
            if b"BEGIN CERTIFICATE" not in data:
                raise ConfigError(f"{f} is not a PEM certificate", hint="`ca_certs` takes PEM files")
            name = f.stem.replace(os.sep, "_") + ".crt"
            # Two files with the same name from different places must both survive.
            while name in found and found[name] != data:
                name = "_" + name
            found[name] = data
    return sorted(found.items())


def materialise(certs: list[tuple[str, bytes]], cache_dir: Path) -> Path:
    """A directory named by the certs' content holding `tsk-ca/` (README + *.crt). Written once."""
    digest = digest_bytes(b"".join(n.encode() + b"\0" + d + b"\0" for n, d in certs))
    parent = cache_dir / "ca" / digest
    target = parent / CONTEXT_NAME
    if target.is_dir():
        return target
    tmp = parent.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}")  # server workers are threads
    (tmp / CONTEXT_NAME).mkdir(parents=True, exist_ok=True)
    (tmp / CONTEXT_NAME / "README").write_bytes(_README)
    for name, data in certs:
        (tmp / CONTEXT_NAME / name).write_bytes(data)
    try:
        tmp.rename(parent)
    except OSError:  # another process published the same content first
        shutil.rmtree(tmp, ignore_errors=True)
    return target
