"""Layer keys: xxh3_128 over a canonical encoding of everything that goes into a layer (DESIGN §2).

Never host UID/GID, git identity, absolute paths or times: two machines with the same inputs compute
the same keys. Bump SCHEMA_VERSION whenever what goes into `KeyInputs`, or how, changes."""

from __future__ import annotations

import msgspec
import xxhash

SCHEMA_VERSION = 1

_encoder = msgspec.json.Encoder(order="deterministic")


class KeyInputs(msgspec.Struct, frozen=True, kw_only=True):
    schema: int
    kind: str
    parent: str | None  # the parent layer's key; None when FROM names an outside image
    snippet: str  # the rendered snippet text (line endings normalised)
    build_args: tuple[tuple[str, str], ...]  # sorted by name
    files: tuple[tuple[str, str], ...]  # (context-relative path, content digest), sorted by path
    base_image_id: str | None  # the resolved image id of FROM, for a layer built on an outside image


def canonical(inputs: KeyInputs) -> bytes:
    return _encoder.encode(inputs)


def layer_key(
    *,
    kind: str,
    parent: str | None,
    snippet: str,
    build_args: dict[str, str] | tuple[tuple[str, str], ...] = (),
    files: dict[str, str] | tuple[tuple[str, str], ...] = (),
    base_image_id: str | None = None,
) -> str:
    args = build_args.items() if isinstance(build_args, dict) else build_args
    fl = files.items() if isinstance(files, dict) else files
    inputs = KeyInputs(
        schema=SCHEMA_VERSION,
        kind=kind,
        parent=parent,
        snippet=normalise_snippet(snippet),
        build_args=tuple(sorted(args)),
        files=tuple(sorted(fl)),
        base_image_id=base_image_id,
    )
    return xxhash.xxh3_128_hexdigest(canonical(inputs))


def normalise_snippet(text: str) -> str:
    """CRLF checkouts and trailing blank lines must not change a key."""
    return text.replace("\r\n", "\n").strip("\n") + "\n"


def digest_bytes(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)
