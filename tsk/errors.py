"""One error root. Every error a user can act on is a TskError with a message that says what went
wrong, where, and how to fix it. Only tsk/cli turns them into output and exit codes."""

from __future__ import annotations


class TskError(Exception):
    """A failure the user can act on. `exit_code` 1: an operation failed; 2: bad usage or config."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(TskError):
    """The command line asked for something that cannot be done as stated."""

    exit_code = 2


class ConfigError(TskError):
    """A config file is malformed, has an unknown key or a value of the wrong type."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{message}", hint=hint)
        self.path = path


class EngineUnavailable(TskError):
    """The container engine cannot be reached."""


class BuilderUnavailable(TskError):
    """The image builder (docker buildx) is missing or does not work."""


class BuildFailed(TskError):
    """A layer's image build failed."""


class EngineError(TskError):
    """The engine refused or failed an operation."""


class EngineNotFound(EngineError):
    """The engine has no such object (container, volume, image, network)."""


class ImageMissing(EngineError):
    """A container was to be made from an image the engine no longer has (pruned meanwhile)."""


class RegistryError(TskError):
    """A registry was unreachable, refused, or failed a push or pull. `reason` is what it said."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class CommandFailed(TskError):
    """A host command (git, docker CLI, ...) exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-15:])
        super().__init__(f"command failed with exit code {returncode}: {' '.join(argv)}\n{tail}".rstrip())
        self.argv = argv
        self.returncode = returncode
        self.output = output
