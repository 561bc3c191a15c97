"""tsk: hand development tasks to AI coding agents in sandboxed containers."""

__version__ = "0.1.0"
