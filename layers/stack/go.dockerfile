# tsk stack "go": Debian's Go toolchain. GOPATH and GOCACHE live under /opt/go,
# which any uid may write (sticky, like /tmp). GOTOOLCHAIN=local: never try to
# download another toolchain.
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    apt-get update \
    && apt-get install -y --no-install-recommends golang-go \
    && mkdir -p /opt/go \
    && chmod 1777 /opt/go

ENV GOPATH=/opt/go \
    GOCACHE=/opt/go/cache \
    GOTOOLCHAIN=local \
    PATH=/opt/go/bin:/usr/lib/go/bin:$PATH

RUN go version

LABEL dev.tsk.stack="go"
