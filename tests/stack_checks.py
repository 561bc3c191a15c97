"""Smoke-test commands for tsk's stack and agent images (data only).

HELLO maps each stack name to a command to run inside that stack's image as a
non-root user (any uid, e.g. ``docker run --rm -u 1000:1000 -e HOME=/tmp/h
IMAGE ...``). It writes a hello-world program in a fresh temp dir, builds and
runs it with the stack's toolchain, and prints exactly ``hello from <stack>``
on stdout (one line); tool versions and other chatter go to stderr. It exits
non-zero on any failure. No network is needed.

AGENT_VERSION maps each agent that installs a binary to a command printing its
version on stdout.
"""

HELLO: dict[str, list[str]] = {
    "default": [
        "bash",
        "-lc",
        'set -euo pipefail; d="$(mktemp -d)"; cd "$d"; '
        "printf '#include <stdio.h>\\nint main(void) { puts(\"hello from default\"); return 0; }\\n' > hello.c; "
        "cc -o hello hello.c; ./hello; "
        "{ git --version; rg --version | head -n1; jq --version; python3 --version; } >&2",
    ],
    "python": [
        "bash",
        "-lc",
        'set -euo pipefail; d="$(mktemp -d)"; cd "$d"; '
        "printf 'def greet(who: str) -> str:\\n    return f\"hello from {who}\"\\n\\n\\nprint(greet(\"python\"))\\n' > hello.py; "
        "python3 hello.py; "
        "{ pytest --version; ruff --version; mypy --version; uv --version; black --version; ty --version; "
        "poetry --version; ipython --version; "
        "ruff check -q hello.py; mypy --no-error-summary hello.py; black -q --check hello.py; } >&2; "
        # the virtualenv is active and any uid may install into it
        'test "$(python -c "import sys; print(sys.prefix)")" = /opt/venv; '
        'test "$(command -v pip)" = /opt/venv/bin/pip; '
        'touch "$(python -c "import sysconfig; print(sysconfig.get_paths()[\'purelib\'])")/tsk-check.pth"',
    ],
    "node": [
        "bash",
        "-lc",
        'set -euo pipefail; d="$(mktemp -d)"; cd "$d"; '
        "printf 'const who: string = \"node\";\\nconsole.log(\"hello from \" + who);\\n' > hello.ts; "
        "tsc --outDir out hello.ts >&2; node out/hello.js; "
        "{ node --version; npm --version; tsc --version; pnpm --version; yarn --version; } >&2",
    ],
    "go": [
        "bash",
        "-lc",
        'set -euo pipefail; d="$(mktemp -d)"; cd "$d"; '
        "printf 'module example.com/hello\\n\\ngo 1.24\\n' > go.mod; "
        "printf 'package main\\n\\nimport \"fmt\"\\n\\nfunc main() {\\n\\tfmt.Println(\"hello from go\")\\n}\\n' > main.go; "
        "go build -o hello . >&2; ./hello; go version >&2",
    ],
    "rust": [
        "bash",
        "-lc",
        'set -euo pipefail; d="$(mktemp -d)"; cd "$d"; '
        "cargo new --quiet --vcs none hello >&2; cd hello; "
        "printf 'fn main() {\\n    println!(\"hello from rust\");\\n}\\n' > src/main.rs; "
        "cargo run --offline --quiet; { cargo --version; rustc --version; } >&2",
    ],
    "java": [
        "bash",
        "-lc",
        'set -euo pipefail; d="$(mktemp -d)"; cd "$d"; '
        "printf 'public class Hello {\\n    public static void main(String[] args) {\\n"
        "        System.out.println(\"hello from java\");\\n    }\\n}\\n' > Hello.java; "
        "javac Hello.java >&2; java -cp . Hello; "
        "{ java -version; mvn -v; gradle --version; } >&2",
    ],
    "lua": [
        "bash",
        "-lc",
        'set -euo pipefail; d="$(mktemp -d)"; cd "$d"; '
        "printf 'local who = \"lua\"\\nprint(\"hello from \" .. who)\\n' > hello.lua; "
        "luac5.4 -o hello.luac hello.lua; lua5.4 hello.luac; "
        "{ lua5.4 -v; luarocks --version; } >&2",
    ],
}

AGENT_VERSION: dict[str, list[str]] = {
    "claude": ["bash", "-lc", "claude --version"],
    "codex": [
        "bash",
        "-lc",
        'export CODEX_HOME="$(mktemp -d)"; codex --version',
    ],
}
