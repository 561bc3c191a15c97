"""Agent plug-ins: how each agent CLI is started in the sandbox and how its output becomes events and a
verdict. Pure planning; the container runner executes."""

from __future__ import annotations

from tsk.agents.base import AGENT_HOME, Agent, AgentResult, CredentialFile, HomeFile, HomeFiles
from tsk.agents.claude import ClaudeAgent
from tsk.agents.codex import CodexAgent
from tsk.agents.events import (
    Event,
    Final,
    Message,
    Raw,
    Session,
    TodoItem,
    TodoList,
    ToolResult,
    ToolUse,
    Usage,
    decode_event,
    encode_event,
    render,
)
from tsk.agents.exec import ExecAgent, GenericAgent
from tsk.agents.failures import FAILURES, Failure
from tsk.agents.registry import AGENTS, get_agent

__all__ = [
    "AGENTS",
    "AGENT_HOME",
    "FAILURES",
    "Agent",
    "AgentResult",
    "ClaudeAgent",
    "CodexAgent",
    "CredentialFile",
    "Event",
    "ExecAgent",
    "Failure",
    "Final",
    "GenericAgent",
    "HomeFile",
    "HomeFiles",
    "Message",
    "Raw",
    "Session",
    "TodoItem",
    "TodoList",
    "ToolResult",
    "ToolUse",
    "Usage",
    "decode_event",
    "encode_event",
    "get_agent",
    "render",
]
