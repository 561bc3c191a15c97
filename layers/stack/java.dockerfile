# tsk stack "java": Debian's default JDK (headless), Maven and Gradle.
# ca-certificates-java builds the JDK trust store from /etc/ssl/certs, which
# already holds the host CAs installed by the base layer.
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends default-jdk-headless maven gradle

RUN java -version && mvn -v

LABEL dev.tsk.stack="java"
