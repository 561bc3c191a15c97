# tsk stack "rust": Debian's cargo and rustc (plus rustfmt and clippy), and just (upstream tsk's
# rust stack installs it).
# CARGO_HOME is /opt/cargo, writable by any uid (sticky, like /tmp).
# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    apt-get update \
    && apt-get install -y --no-install-recommends cargo rustc rustfmt rust-clippy just \
    && mkdir -p /opt/cargo \
    && chmod 1777 /opt/cargo

ENV CARGO_HOME=/opt/cargo \
    PATH=/opt/cargo/bin:$PATH

RUN cargo --version && rustc --version && just --version

LABEL dev.tsk.stack="rust"
