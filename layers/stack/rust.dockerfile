# tsk stack "rust": Debian's cargo and rustc (plus rustfmt and clippy).
# CARGO_HOME is /opt/cargo, writable by any uid (sticky, like /tmp).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    apt-get update \
    && apt-get install -y --no-install-recommends cargo rustc rustfmt rust-clippy \
    && mkdir -p /opt/cargo \
    && chmod 1777 /opt/cargo

ENV CARGO_HOME=/opt/cargo \
    PATH=/opt/cargo/bin:$PATH

RUN cargo --version && rustc --version

LABEL dev.tsk.stack="rust"
