# tsk stack "python": Debian's python3 + venv + pip, plus uv, pytest, ruff and
# mypy from PyPI, installed system-wide (into /usr/local). Bump a version here
# to rebuild the layer.
ARG UV_VERSION=0.13.9
ARG PYTEST_VERSION=9.2.0
ARG RUFF_VERSION=0.17.6
ARG MYPY_VERSION=2.4.1

# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    apt-get update \
    && apt-get install -y --no-install-recommends \
        python3-venv python3-pip python3-dev python-is-python3

RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    PIP_ROOT_USER_ACTION=ignore pip install --break-system-packages \
        "uv==${UV_VERSION}" "pytest==${PYTEST_VERSION}" \
        "ruff==${RUFF_VERSION}" "mypy==${MYPY_VERSION}" \
    && find /usr/local/lib -name __pycache__ -type d -prune -exec rm -rf {} + \
    && uv --version && pytest --version && ruff --version && mypy --version

LABEL dev.tsk.stack="python"
