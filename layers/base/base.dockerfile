# tsk base layer: common tools (upstream tsk's base has the same: just, unzip, vim, gnupg, dig, ping,
# pip), the non-root `agent` user, and the host's extra CAs.
# socat is tsk's own: a task container has no network, and socat carries its
# connections to the egress proxy over a unix socket (tsk/sandbox/proxy.py).
# Built as: FROM debian:trixie + this snippet. The build context holds tsk-ca/
# (the host's extra CA certs as *.crt plus a README).
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8

# Keep images lean: packages installed from here on (in every layer) skip docs,
# man pages and translations (copyright files are kept).
# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    rm -f /etc/apt/apt.conf.d/docker-clean \
    && printf '%s\n' \
        'path-exclude=/usr/share/doc/*' \
        'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' \
        'path-exclude=/usr/share/info/*' \
        'path-exclude=/usr/share/locale/*' \
        'path-include=/usr/share/locale/locale.alias' \
        > /etc/dpkg/dpkg.cfg.d/tsk-nodoc \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates curl git git-lfs build-essential ripgrep jq python3 python3-pip \
        sudo procps less openssh-client socat \
        just unzip vim gnupg dnsutils iputils-ping \
    && rm -rf /tmp/* /var/tmp/*

# Host CAs (TLS-inspecting networks). Only *.crt files are picked up; README is ignored.
COPY tsk-ca/ /usr/local/share/ca-certificates/tsk/
RUN rm -f /usr/local/share/ca-certificates/tsk/README \
    && update-ca-certificates

ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt \
    GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt

# Login shells (bash -l) keep the image's PATH: Debian's /etc/profile resets
# PATH, which would drop dirs that later layers add with ENV PATH=...
# (e.g. /opt/go/bin, /opt/cargo/bin). Save it first, restore it in profile.d.
#
# Non-root user; sudo is installed but deliberately NOT granted.
RUN sed -i '1i TSK_IMAGE_PATH="${PATH-}"  # tsk: restored by /etc/profile.d/00-tsk-path.sh' /etc/profile \
    && printf '%s\n' \
        '# tsk: restore the PATH the image/container set (saved at the top of /etc/profile).' \
        'if [ -n "${TSK_IMAGE_PATH-}" ]; then PATH="$TSK_IMAGE_PATH"; export PATH; fi' \
        'unset TSK_IMAGE_PATH' \
        > /etc/profile.d/00-tsk-path.sh \
    && groupadd --gid 1000 agent \
    && useradd --uid 1000 --gid 1000 --home-dir /home/agent --create-home --shell /bin/bash agent \
    && git lfs install --system \
    && mkdir -p /workspace \
    && chmod 1777 /workspace

WORKDIR /workspace
