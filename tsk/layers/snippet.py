"""What a Dockerfile snippet reads from its build context: the sources of COPY and ADD, and of
`RUN --mount=type=bind`. Their content is part of the layer's key and the only thing uploaded."""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import xxhash

from tsk.errors import ConfigError


def logical_lines(text: str) -> list[str]:
    """Join backslash continuations; drop comments and blank lines."""
    out: list[str] = []
    buf = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker too
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    if buf.strip():
        out.append(buf)
    return out


def context_sources(text: str) -> list[str]:
    """Context paths read by the snippet, in order of appearance, without duplicates."""
    found: list[str] = []
    for line in logical_lines(text):
        word, _, rest = line.partition(" ")
        instr = word.upper()
        if instr in ("COPY", "ADD"):
            found.extend(_copy_sources(rest.strip()))
        elif instr == "RUN" and "--mount" in rest:  # most RUN lines mount nothing: skip the tokenizer
            found.extend(_bind_mount_sources(rest))
    return list(dict.fromkeys(found))


def _copy_sources(rest: str) -> list[str]:
    args: list[str]
    flags: list[str] = []
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.strip()
    if any(f.startswith("--from=") for f in flags):
        return []  # copies from another image or stage, not from the context
    if rest.startswith("["):
        try:
            args = [str(a) for a in json.loads(rest)]
        except ValueError:
            args = shlex.split(rest)
    else:
        args = shlex.split(rest)
    return [_clean(a) for a in args[:-1]]


def _bind_mount_sources(rest: str) -> list[str]:
    out: list[str] = []
    for token in shlex.split(rest):
        if not token.startswith("--mount="):
            if not token.startswith("--"):
                break
            continue
        opts: dict[str, str] = {}
        for kv in token[len("--mount="):].split(","):
            name, _, value = kv.partition("=")
            opts[name] = value
        if opts.get("type", "bind") == "bind" and "from" not in opts:
            out.append(_clean(opts.get("source") or opts.get("src") or "."))
    return out


def _clean(src: str) -> str:
    if src.startswith(("http://", "https://")):
        return src
    norm = os.path.normpath(src.lstrip("/")) if src not in ("", ".", "./") else "."
    return norm


def digest_path(path: Path) -> str:
    """Content digest of a file or a directory tree: relative names, exec bits, file bytes, link targets.
    Times, owners and the absolute location do not count."""
    h = xxhash.xxh3_128()
    if path.is_symlink() or path.is_file():
        _feed(h, path, ".")
        return h.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        rel_root = os.path.relpath(root, path)
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            _feed(h, Path(root) / name, os.path.normpath(os.path.join(rel_root, name)))
        h.update(f"D{rel_root}\0".encode())
    return h.hexdigest()


def _feed(h: xxhash.xxh3_128, path: Path, rel: str) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        h.update(f"L{rel}\0{os.readlink(path)}\0".encode())
        return
    h.update(f"F{rel}\0{1 if st.st_mode & 0o111 else 0}\0{st.st_size}\0".encode())
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def resolve_sources(
    where: str, sources: list[str], roots: dict[str, Path], default_root: Path | None
) -> dict[str, Path]:
    """Map each context path to the host path it comes from. `roots` maps a top-level name (such as
    the generated `tsk-ca`) to its own directory; everything else is looked up under `default_root`."""
    out: dict[str, Path] = {}
    for src in sources:
        if src.startswith(("http://", "https://")):
            continue  # remote ADD: the URL itself is in the snippet text, hence in the key
        head = src.split("/", 1)[0]
        if head in roots:
            base = roots[head].parent
        elif default_root is not None:
            base = default_root
        else:
            raise ConfigError(f"{where}: COPY source `{src}` has no build context to come from")
        matches = sorted(base.glob(src)) if any(c in src for c in "*?[") else [base / src]
        existing = [m for m in matches if m.exists() or m.is_symlink()]
        if not existing:
            raise ConfigError(
                f"{where}: COPY/ADD source `{src}` not found (looked in {base})",
                hint="add the file, or fix the path in the snippet (paths are relative to the build context)",
            )
        real_base = os.path.realpath(base)
        for m in existing:
            rel = os.path.relpath(m, base)
            # realpath, not the name: a symlinked dir on the way (`COPY linked/secret ...`) would read
            # files from outside the repository into an image whose build has the network
            real = os.path.realpath(m)
            if rel.startswith("..") or os.path.commonpath([real_base, real]) != real_base:
                raise ConfigError(f"{where}: COPY source `{src}` resolves outside the build context ({base})",
                                  hint="copy only files that live inside the repository; a symlink on the "
                                  "way that leads out is refused")
            out[rel] = m
    return out
