# tsk proxy: Squid from Debian with tsk's allow-list config (squid.conf, next
# to this file). Standalone: built FROM debian:trixie, not on the tsk base.
# The image runs as Squid's default `proxy` user (port 3128 needs no root).
# Docker hands stdout/stderr to the container's user, which is what lets Squid
# open stdio:/dev/stdout for its access log. If the container is started as
# root anyway, the CMD first gives those pipes to `proxy`, since Squid drops to
# cache_effective_user (proxy) before it opens its logs. Tasks have no network:
# socat serves them Squid and the project's host_ports on unix sockets in
# /run/tsk-proxy, a volume that starts as a copy of the dir made here (owned by
# `proxy`, so the listeners can create their sockets).
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
    && apt-get install -y --no-install-recommends squid socat \
    && mkdir -p /run/squid /var/spool/squid /var/log/squid /run/tsk-proxy \
    && chown proxy:proxy /run/squid /var/spool/squid /var/log/squid /run/tsk-proxy

COPY squid.conf /etc/squid/squid.conf

RUN squid -k parse -f /etc/squid/squid.conf

USER proxy
EXPOSE 3128
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "if [ \"$(id -u)\" = 0 ]; then chown proxy:proxy /proc/self/fd/1 /proc/self/fd/2; fi; exec squid -N -f /etc/squid/squid.conf"]
