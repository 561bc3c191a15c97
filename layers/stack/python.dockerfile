# tsk stack "python": Debian's python3, and an activated virtualenv (/opt/venv) with the tools
# upstream tsk's python stack has: uv, pip, pytest (+ cov, asyncio, mock), black, ruff, ty, mypy,
# poetry, ipython, ipdb and the usual libraries. `pip install`, `uv pip install .` and `poetry
# install` go into it without flags. It lives outside the agent's home (tsk mounts the task's own
# there) and any uid may write it: tasks run as the user's uid, not a fixed one.
# Bump a version here to rebuild the layer.
ARG UV_VERSION=0.13.9
ARG PIP_VERSION=26.3
ARG PYTEST_VERSION=9.2.0
ARG PYTEST_COV_VERSION=7.1.0
ARG PYTEST_ASYNCIO_VERSION=1.5.0
ARG PYTEST_MOCK_VERSION=3.17.0
ARG BLACK_VERSION=26.10.1
ARG RUFF_VERSION=0.17.6
ARG TY_VERSION=1.0.0
ARG MYPY_VERSION=2.4.1
ARG POETRY_VERSION=2.5.1
ARG IPYTHON_VERSION=9.18.1
ARG IPDB_VERSION=0.13.13
ARG REQUESTS_VERSION=2.34.2
ARG HTTPX_VERSION=0.29.0
ARG PYDANTIC_VERSION=2.14.4
ARG TYPING_EXTENSIONS_VERSION=4.16.0
ARG PYTHON_DOTENV_VERSION=1.2.4
ARG RICH_VERSION=15.0.0
ARG CLICK_VERSION=8.5.1
ARG TQDM_VERSION=4.70.1

# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    apt-get update \
    && apt-get install -y --no-install-recommends \
        python3-venv python3-pip python3-dev python-is-python3

RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    PIP_ROOT_USER_ACTION=ignore pip install --break-system-packages "uv==${UV_VERSION}" \
    && uv --version

RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    uv venv --python /usr/bin/python3 /opt/venv \
    && uv pip install --python /opt/venv/bin/python \
        "pip==${PIP_VERSION}" "pytest==${PYTEST_VERSION}" "pytest-cov==${PYTEST_COV_VERSION}" \
        "pytest-asyncio==${PYTEST_ASYNCIO_VERSION}" "pytest-mock==${PYTEST_MOCK_VERSION}" \
        "black==${BLACK_VERSION}" "ruff==${RUFF_VERSION}" "ty==${TY_VERSION}" "mypy==${MYPY_VERSION}" \
        "poetry==${POETRY_VERSION}" "ipython==${IPYTHON_VERSION}" "ipdb==${IPDB_VERSION}" \
        "requests==${REQUESTS_VERSION}" "httpx==${HTTPX_VERSION}" "pydantic==${PYDANTIC_VERSION}" \
        "typing-extensions==${TYPING_EXTENSIONS_VERSION}" "python-dotenv==${PYTHON_DOTENV_VERSION}" \
        "rich==${RICH_VERSION}" "click==${CLICK_VERSION}" "tqdm==${TQDM_VERSION}" \
    && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} + \
    && chmod -R a+rwX /opt/venv

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

RUN python --version && pip --version && uv --version && pytest --version && black --version \
    && ruff --version && ty --version && mypy --version && poetry --version

LABEL dev.tsk.stack="python"
