#!/usr/bin/env bash
# docker-compose.yml's one-shot demo-init service (the demo image, as root):
# what the quick start's stack.sh prepares, in the shared volume /demo:
#   /demo/tls       a CA and a certificate for src-imap and dst-imap (STARTTLS
#                   with certificate and host-name verification, as the quick
#                   start does)
#   /demo/secret    the key file (mode 0600, owned by the mailshift user)
#   /demo/corpus    the SpamAssassin corpus (tests/infra/corpus.sh)
#   /demo/plan.json and accounts.csv: alice and bob, the quick start's plan
#   /demo/state     the demo service's (the migration's id)
# Idempotent: what exists is kept, so `docker-compose up` runs again.
# The paths, host names and ports can be moved (tests/integration/test_deploy.sh
# rehearses the demo on one machine): MAILSHIFT_DEMO_DIR, MAILSHIFT_INFRA,
# DEMO_SRC_HOST, DEMO_DST_HOST, DEMO_SRC_PORT, DEMO_DST_PORT.
set -euo pipefail
demo=${MAILSHIFT_DEMO_DIR:-/demo}
infra=${MAILSHIFT_INFRA:-/opt/mailshift/tests/infra}
src_host=${DEMO_SRC_HOST:-src-imap} src_port=${DEMO_SRC_PORT:-143}
dst_host=${DEMO_DST_HOST:-dst-imap} dst_port=${DEMO_DST_PORT:-143}
mkdir -p "$demo/tls" "$demo/secret" "$demo/state"

if [[ ! -f $demo/tls/ca.pem ]]; then
  cd "$demo/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mailshift demo CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=src-imap" -keyout server.key \
    -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:src-imap,DNS:dst-imap,DNS:localhost,IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile san.ext -out server.pem 2>/dev/null
  rm -f server.csr san.ext ca.key ca.srl
  chmod 644 ca.pem server.pem
  chmod 600 server.key
fi

if [[ ! -f $demo/secret/key ]]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$demo/secret/key")
fi
# The daemons run as uid 10001 (the images' mailshift user); a key file
# others can read is refused.
chown -R 10001:10001 "$demo/secret"
chmod 700 "$demo/secret"
chmod 600 "$demo/secret/key"
# The demo service (uid 10001) keeps the migration's id here.
chown 10001:10001 "$demo/state"

MAILSHIFT_CACHE=${MAILSHIFT_CACHE:-$demo/cache} bash "$infra/corpus.sh" >"$demo/corpus-path"

cat >"$demo/plan.json" <<JSON
{
  "name": "compose-demo",
  "source": {"host": "$src_host", "port": $src_port, "tls": "starttls",
             "ca_file": "$demo/tls/ca.pem", "auth": "plain", "max_connections": 10},
  "destination": {"host": "$dst_host", "port": $dst_port, "tls": "starttls",
                  "ca_file": "$demo/tls/ca.pem", "auth": "plain", "max_connections": 10},
  "accounts": "accounts.csv"
}
JSON
cat >"$demo/accounts.csv" <<CSV
source_login,source_password,destination_login,destination_password
alice,alice-source-pw,alice,alice-dest-pw
bob,bob-source-pw,bob,bob-dest-pw
CSV
chmod 644 "$demo/plan.json" "$demo/accounts.csv"
echo "demo-init: TLS, key, corpus and plan ready in $demo"
