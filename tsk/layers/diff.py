"""What changed between two layer manifests, in the snippet's own words: `setup changed (digest a→b)`,
`setup: COPY file tools/x.sh changed (…)`, `a lower layer changed (parent key a→b)`. One wording for
`tsk layers why` and `tsk layers lock --check`."""

from __future__ import annotations

from tsk.layers.plan import Manifest


def short(digest: str | None) -> str:
    return (digest or "").removeprefix("sha256:")[:12] or "none"


def source_name(origin: str) -> str:
    """`layers/stack/python.dockerfile` stays a path; `config setup` becomes `setup` (the config key)."""
    return origin.removeprefix("config ")


def changes(old: Manifest, new: Manifest, *, old_key: str = "", new_key: str = "") -> list[str]:
    """One line per input that differs, the parent last. With the keys given, a key that changed while
    every recorded input agrees is said too (a key schema change)."""
    what = source_name(new.origin)
    out: list[str] = []
    if old.snippet != new.snippet:
        out.append(f"{what} changed (digest {short(old.snippet)}→{short(new.snippet)})")
    if old.origin != new.origin:
        out.append(f"snippet now comes from {new.origin} (was {old.origin or 'unknown'})")
    if (old.base_image or None) != (new.base_image or None):
        out.append(f"base image changed: {old.base_image}→{new.base_image}")
    elif old.base_image_id != new.base_image_id:
        out.append(f"base image {new.base_image} changed (id {short(old.base_image_id)}→{short(new.base_image_id)})")
    for path in sorted(set(old.files) | set(new.files)):
        a, b = old.files.get(path), new.files.get(path)
        where = f"{what}: COPY file {path}"
        if a is None:
            out.append(f"{where} added (digest {short(b)})")
        elif b is None:
            out.append(f"{where} removed")
        elif a != b:
            out.append(f"{where} changed (digest {short(a)}→{short(b)})")
    for arg in sorted(set(old.build_args) | set(new.build_args)):
        a, b = old.build_args.get(arg), new.build_args.get(arg)
        if a != b:
            out.append(f"build arg {arg} changed: {a!r}→{b!r}")
    if (old.parent or None) != (new.parent or None):
        out.append(f"a lower layer changed (parent key {short(old.parent)}→{short(new.parent)})")
    if not out and old_key != new_key:
        out.append(f"key changed ({short(old_key)}→{short(new_key)}) with the same recorded inputs (another key "
                   "schema?)")
    return out
