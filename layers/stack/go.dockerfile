# tsk stack "go": Debian's Go toolchain, and the tools upstream tsk's go stack installs (gopls,
# delve, goimports, staticcheck), from Debian too: `go install` needs proxy.golang.org at build. GOPATH and GOCACHE live under /opt/go,
# which any uid may write (sticky, like /tmp). GOTOOLCHAIN=local: never try to
# download another toolchain.
# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    apt-get update \
    && apt-get install -y --no-install-recommends golang-go gopls delve golang-golang-x-tools go-staticcheck \
    && mkdir -p /opt/go \
    && chmod 1777 /opt/go

ENV GOPATH=/opt/go \
    GOCACHE=/opt/go/cache \
    GOTOOLCHAIN=local \
    PATH=/opt/go/bin:/usr/lib/go/bin:$PATH

RUN go version && gopls version && dlv version && command -v goimports staticcheck

LABEL dev.tsk.stack="go"
