"""Setup snippets written for upstream tsk. There every snippet starts as the `agent` user (its base
ends with `USER agent`), with `~/.local/bin` on PATH, and a snippet that needs root says `USER root`
and hands back with `USER agent`. Here snippets run as root, and a task's home is its own dir mounted
over /home/agent. A snippet with a USER line of its own is taken as upstream's and given upstream's
start; after it, the build is root again (the layers above it install system-wide), and what it left
in the agent's home is kept in IMAGE_HOME, which the run script links into the task's home."""

from __future__ import annotations

from tsk.agents.base import AGENT_HOME
from tsk.layers.snippet import logical_lines

IMAGE_HOME = "/opt/tsk/image-home"


def written_for_upstream(snippet: str) -> bool:
    return any(line.split(None, 1)[0].upper() == "USER" for line in logical_lines(snippet))


def as_upstream(snippet: str) -> str:
    """`snippet` as upstream runs it, when it is upstream's; else unchanged."""
    if not written_for_upstream(snippet):
        return snippet
    keep = (f"RUN rm -rf {IMAGE_HOME} && mkdir -p {IMAGE_HOME} && cp -a {AGENT_HOME}/. {IMAGE_HOME}/ "
            f"&& chmod -R a+rwX {IMAGE_HOME}")
    return "\n".join([
        "# tsk: written for upstream tsk (it has USER lines): started as upstream starts it",
        "USER agent",
        f"ENV PATH={AGENT_HOME}/.local/bin:$PATH",
        snippet.strip("\n"),
        "# tsk: the layers above build as root; the agent's home is kept for the task's",
        "USER root",
        keep,
    ]) + "\n"


def link_image_home() -> str:
    """bash for the run script: each entry an upstream snippet left in the agent's home, linked into
    the task's home unless the task has its own (its credentials, its settings)."""
    return (f'if [ -d {IMAGE_HOME} ]; then for f in {IMAGE_HOME}/.[!.]* {IMAGE_HOME}/*; do '
            '[ -e "$f" ] || continue; n="$HOME/${f##*/}"; '
            '[ -e "$n" ] || [ -L "$n" ] || ln -s "$f" "$n"; done; fi')
