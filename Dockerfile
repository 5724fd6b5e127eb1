# mailshift images, Debian 12.
#
#   docker build -t mailshift .                  the runtime image (the default):
#                                                mailshift-coordinator, mailshift-worker
#                                                and the mailshift CLI, nothing else
#   docker build --target demo -t mailshift-demo .
#                                                the runtime plus Dovecot, Python and
#                                                the repository's test scripts, for
#                                                docker-compose.yml's demo servers
#
# The runtime image runs as the non-root user mailshift (uid 10001) and writes
# nothing but to $TMPDIR (/tmp: mount an emptyDir or a tmpfs there with a
# read-only root filesystem).  See README.md, "Deploying".

# --- build: every target of the CMake project ---------------------------------
FROM debian:12-slim AS build
# The -dev packages of deploy/install-deps.sh's build list.  libcurl (OAuth2
# token endpoints, CardDAV/CalDAV, the CLI) is the GnuTLS flavour:
# libetpan-dev depends on it, and Debian's two
# flavours of libcurl's -dev package exclude each other.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      librdkafka-dev libetpan-dev libssl-dev libpq-dev libc-ares-dev \
      libprotobuf-c-dev protobuf-c-compiler libjansson-dev libmicrohttpd-dev \
      libcurl4-gnutls-dev libxml2-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The dashboard's files (ui/) are served by the coordinator from
# MAILSHIFT_UI_DIR; an empty directory when this tree has none.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build -j"$(nproc)" \
 && mkdir -p /out/bin /out/ui \
 && install -m 755 /build/coordinator/mailshift-coordinator /build/worker/mailshift-worker /out/bin/ \
 && if [ -x /build/cli/mailshift ]; then install -m 755 /build/cli/mailshift /out/bin/; fi \
 && if [ -d ui ]; then cp -r ui/. /out/ui/; fi \
 && strip --strip-debug /out/bin/*

# --- runtime: the binaries and the libraries they link against ----------------
FROM debian:12-slim AS runtime
# Exactly the packages holding the libraries the binaries are linked against
# (tests/integration/test_deploy.sh compares these lists with readelf and
# ldd of the built binaries, mapped to packages by dpkg -S), and the CA
# certificates for IMAP servers' TLS.
ARG RUNTIME_LIBS="libc-ares2 libcurl3-gnutls libetpan20 libjansson4 libmicrohttpd12 libpq5 libprotobuf-c1 librdkafka1 libssl3 libxml2"
ARG CLI_LIBS=""
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ${RUNTIME_LIBS} ${CLI_LIBS} ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mailshift \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin mailshift
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/ui/ /usr/share/mailshift/ui/
ENV MAILSHIFT_UI_DIR=/usr/share/mailshift/ui \
    TMPDIR=/tmp \
    MAILSHIFT_TMPDIR=/tmp
USER 10001:10001
WORKDIR /tmp
# No entrypoint: a container names its binary (mailshift-coordinator run,
# mailshift-worker, mailshift ...), as docker-compose.yml and deploy/k8s do.
CMD ["mailshift-coordinator", "--help"]

# --- demo: the runtime plus what docker-compose.yml's demo needs --------------
FROM runtime AS demo
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      dovecot-imapd dovecot-core python3 openssl npm \
 && rm -rf /var/lib/apt/lists/*
COPY tests/infra/ /opt/mailshift/tests/infra/
COPY deploy/compose/ /opt/mailshift/deploy/compose/
WORKDIR /opt/mailshift

# --- the default target: the runtime image -----------------------------------
FROM runtime
