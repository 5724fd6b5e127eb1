#!/usr/bin/env bash
# docker-compose.yml's src-imap and dst-imap services (the demo image, as
# root): one Dovecot server each, configured like tests/infra/stack.sh's src
# (folders as directories, '/' delimiter) and dst (Maildir++, '.' delimiter,
# other special-use names), with the quick start's users; src is filled from
# the corpus once.  Runs Dovecot in the foreground.
#   dovecot.sh src|dst
# MAILSHIFT_DEMO_DIR, MAILSHIFT_DEMO_SRV, MAILSHIFT_INFRA, DEMO_LISTEN and
# DEMO_PORT move it (tests/integration/test_deploy.sh rehearses the demo).
set -euo pipefail
role=${1:?usage: dovecot.sh src|dst}
demo=${MAILSHIFT_DEMO_DIR:-/demo}
infra=${MAILSHIFT_INFRA:-/opt/mailshift/tests/infra}
d=${MAILSHIFT_DEMO_SRV:-/srv}/$role
mkdir -p "$d/run" "$d/state" "$d/mail"
chown mail:mail "$d/mail"

if [[ $role == src ]]; then
  layout=":LAYOUT=fs"
  printf '%s\n' 'alice:{PLAIN}alice-source-pw::::::' 'bob:{PLAIN}bob-source-pw::::::' >"$d/users"
  special='mailbox Sent {
    special_use = \Sent
  }
  mailbox Trash {
    special_use = \Trash
  }'
else
  layout=""
  printf '%s\n' 'alice:{PLAIN}alice-dest-pw::::::' 'bob:{PLAIN}bob-dest-pw::::::' >"$d/users"
  special='mailbox Sent {
    special_use = \Sent
    auto = create
  }
  mailbox "Deleted Messages" {
    special_use = \Trash
    auto = create
  }'
fi
chmod 600 "$d/users"

cat >"$d/dovecot.conf" <<CONF
# Written by deploy/compose/dovecot.sh for the demo's $role server.
instance_name = mailshift-demo-$role
base_dir = $d/run
state_dir = $d/state
log_path = /dev/stderr
protocols = imap
mail_save_crlf = yes
listen = ${DEMO_LISTEN:-*}
default_internal_user = root
default_internal_group = root
default_login_user = dovenull
first_valid_uid = 1
first_valid_gid = 1
mail_uid = mail
mail_gid = mail
ssl = yes
ssl_cert = <$demo/tls/server.pem
ssl_key = <$demo/tls/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_max_userip_connections = 50
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$d/mail/%u
}
mail_location = maildir:~/Maildir$layout
namespace inbox {
  inbox = yes
  $special
}
service imap-login {
  inet_listener imap {
    port = ${DEMO_PORT:-143}
  }
  inet_listener imaps {
    port = 0
  }
}
CONF

if [[ $role == src && ! -e $d/mail/.filled ]]; then
  corpus=$(cat "$demo/corpus-path")
  python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$d/mail/alice/Maildir" \
    --layout fs
  python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$d/mail/bob/Maildir" \
    --layout fs --limit 1500 --seed 2
  touch "$d/mail/.filled"
fi
exec dovecot -F -c "$d/dovecot.conf"
