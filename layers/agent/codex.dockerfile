# tsk agent "codex": the OpenAI Codex CLI's native (static musl) build, taken from
# the per-platform npm version @openai/codex@<version>-linux-{x64,arm64}.
# The platform's vendor dir (bin/codex plus codex-resources/ and codex-path/,
# found relative to the binary) goes to /opt/codex; /usr/local/bin/codex links to it.
# Needs only curl, jq, tar and python3 (all in the base layer); node is NOT needed.
ARG CODEX_VERSION=0.169.0
ARG NPM_REGISTRY=https://registry.npmjs.org
ARG TARGETARCH

RUN set -eu; \
    arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
        amd64) plat=linux-x64; triple=x86_64-unknown-linux-musl ;; \
        arm64) plat=linux-arm64; triple=aarch64-unknown-linux-musl ;; \
        *) echo "unsupported architecture: $arch" >&2; exit 1 ;; \
    esac; \
    meta="$(curl -fsSL "${NPM_REGISTRY%/}/@openai%2fcodex/${CODEX_VERSION}-${plat}")"; \
    url="$(printf '%s' "$meta" | jq -er .dist.tarball)"; \
    integrity="$(printf '%s' "$meta" | jq -er .dist.integrity)"; \
    tmp="$(mktemp -d)"; \
    curl -fsSL -o "$tmp/pkg.tgz" "$url"; \
    python3 -c 'import base64,hashlib,sys; d=hashlib.sha512(open(sys.argv[1],"rb").read()).digest(); sys.exit(0 if "sha512-"+base64.b64encode(d).decode()==sys.argv[2] else "integrity mismatch")' "$tmp/pkg.tgz" "$integrity"; \
    tar -xzf "$tmp/pkg.tgz" -C "$tmp" "package/vendor/$triple"; \
    rm -rf /opt/codex; \
    mv "$tmp/package/vendor/$triple" /opt/codex; \
    chown -R root:root /opt/codex; \
    chmod -R a+rX,go-w /opt/codex; \
    ln -sf /opt/codex/bin/codex /usr/local/bin/codex; \
    rm -rf "$tmp"; \
    home="$(mktemp -d)"; \
    CODEX_HOME="$home" codex --version; \
    rm -rf "$home"

LABEL dev.tsk.agent="codex"
