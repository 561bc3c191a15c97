# tsk stack "java": Debian's default JDK (headless), Maven, Gradle and Groovy (upstream tsk's java
# stack adds Groovy and Kotlin from SDKMAN, which a build here cannot reach).
# ca-certificates-java builds the JDK trust store from /etc/ssl/certs, which
# already holds the host CAs installed by the base layer.
# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends default-jdk-headless maven gradle groovy

RUN java -version && mvn -v && groovy --version

LABEL dev.tsk.stack="java"
