# tsk agent "claude": Claude Code's self-contained native binary, taken from the
# per-platform npm package @anthropic-ai/claude-code-linux-{x64,arm64}.
# Needs only curl, jq, tar and python3 (all in the base layer); node is NOT needed.
ARG CLAUDE_CODE_VERSION=2.1.330
ARG NPM_REGISTRY=https://registry.npmjs.org
ARG TARGETARCH

RUN set -eu; \
    arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
        amd64) plat=linux-x64 ;; \
        arm64) plat=linux-arm64 ;; \
        *) echo "unsupported architecture: $arch" >&2; exit 1 ;; \
    esac; \
    meta="$(curl -fsSL "${NPM_REGISTRY%/}/@anthropic-ai%2fclaude-code-${plat}/${CLAUDE_CODE_VERSION}")"; \
    url="$(printf '%s' "$meta" | jq -er .dist.tarball)"; \
    integrity="$(printf '%s' "$meta" | jq -er .dist.integrity)"; \
    tmp="$(mktemp -d)"; \
    curl -fsSL -o "$tmp/pkg.tgz" "$url"; \
    python3 -c 'import base64,hashlib,sys; d=hashlib.sha512(open(sys.argv[1],"rb").read()).digest(); sys.exit(0 if "sha512-"+base64.b64encode(d).decode()==sys.argv[2] else "integrity mismatch")' "$tmp/pkg.tgz" "$integrity"; \
    tar -xzf "$tmp/pkg.tgz" -C "$tmp" package/claude; \
    install -m 0755 "$tmp/package/claude" /usr/local/bin/claude; \
    rm -rf "$tmp"; \
    claude --version

# The binary lives in a root-owned path: it cannot update itself, so don't try.
ENV DISABLE_AUTOUPDATER=1

LABEL dev.tsk.agent="claude"
