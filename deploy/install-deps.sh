#!/usr/bin/env bash
# Install the Debian packages mailshift builds and tests with. Idempotent; run as root.
# Debian's postgresql and dovecot packages start system services; tests never use them.
# dnsmasq-base is the binary alone (no service): the MX test runs its own.
# libcurl: the GnuTLS flavour, which libetpan-dev also pulls in (the OpenSSL
# flavour's -dev package conflicts with it).  radicale: the tests' CardDAV/CalDAV
# servers (tests/infra/radicale.sh runs its own; the system service is unused).
# docker-compose (no Docker engine) and python3-yaml let tests/integration/test_deploy.sh
# validate docker-compose.yml and read the Kubernetes manifests; strace watches what
# the worker opens for writing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librdkafka-dev libetpan-dev libssl-dev libpq-dev libc-ares-dev
  libprotobuf-c-dev protobuf-c-compiler libjansson-dev libmicrohttpd-dev libcurl4-gnutls-dev libxml2-dev
  libsasl2-modules libcmocka-dev
  docker-compose strace
  postgresql dovecot-imapd dovecot-pop3d dovecot-core isync dnsmasq-base radicale
  python3 python3-yaml openssl ca-certificates procps time curl jq tmux
  clang-format cppcheck git chromium
)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if ((EUID != 0)); then
  echo "install-deps: must run as root to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
