# tsk stack "node": Debian's nodejs + npm, plus what upstream tsk's node stack has, installed
# globally from npm (into /usr/local): pnpm, yarn (classic), typescript, ts-node, nodemon, eslint,
# prettier, jest and npm-check-updates.
ARG PNPM_VERSION=12.21.0
ARG YARN_VERSION=1.22.22
ARG TYPESCRIPT_VERSION=7.0.2
ARG TS_NODE_VERSION=10.9.2
ARG NODEMON_VERSION=3.1.14
ARG ESLINT_VERSION=10.16.0
ARG PRETTIER_VERSION=3.10.1
ARG JEST_VERSION=30.5.2
ARG NCU_VERSION=23.1.1

# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm

RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm install -g --no-fund --no-audit --update-notifier=false \
        "pnpm@${PNPM_VERSION}" "yarn@${YARN_VERSION}" "typescript@${TYPESCRIPT_VERSION}" \
        "ts-node@${TS_NODE_VERSION}" "nodemon@${NODEMON_VERSION}" "eslint@${ESLINT_VERSION}" \
        "prettier@${PRETTIER_VERSION}" "jest@${JEST_VERSION}" "npm-check-updates@${NCU_VERSION}" \
    && node --version && npm --version && pnpm --version && yarn --version && tsc --version \
    && ts-node --version && nodemon --version && eslint --version && prettier --version && jest --version \
    && ncu --version

ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

LABEL dev.tsk.stack="node"
