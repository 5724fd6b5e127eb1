#!/usr/bin/env bash
# Start or stop a throwaway test stack: PostgreSQL, three Dovecot instances
# (src, dst, dst2) and the local Kafka broker, all on 127.0.0.1, all state
# under DIR. Nothing in /etc is read or written; no system service is used.
#
#   stack.sh start DIR    writes DIR/env (export lines) once everything is up
#   stack.sh stop DIR     stops what start started; safe to repeat
#
# Ports: MAILSHIFT_PORT_BASE (default 14300) + 0 PostgreSQL, +1/+2 src
# imap/imaps, +3/+4 dst, +5/+6 dst2. MAILSHIFT_NO_BROKER=1 skips the broker.
# PostgreSQL runs without fsync for the tests' speed; MAILSHIFT_PG_FSYNC=1
# runs it durable as in production (fsync, synchronous_commit and
# full_page_writes on), for benchmarks.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() { echo "usage: stack.sh start|stop|pg-restart|pg-stop|pg-start DIR (absolute)" >&2; exit 2; }
die() { echo "stack.sh: $*" >&2; exit 1; }

# Print the tail of a component's log and fail.
fail_with_log() {
  local what=$1 log=$2
  echo "stack.sh: $what did not come up; last lines of $log:" >&2
  tail -n 30 "$log" >&2 2>/dev/null || true
  exit 1
}

pg_bindir() {
  local d
  d=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [[ -n $d && -x $d/pg_ctl ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
  echo "$d"
}

# --- TLS: one CA and one server certificate (localhost, 127.0.0.1) per stack
make_tls() {
  local t=$DIR/tls
  mkdir -p "$t"
  [[ -s $t/server.pem ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=mailshift test CA' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' \
    -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
  printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$t/server.ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
    -days 3650 -extfile "$t/server.ext" -out "$t/server.pem" 2>/dev/null
  chmod 600 "$t"/*.key
}

# --- PostgreSQL ------------------------------------------------------------
# pg_ctl_start PGDIR: the server of PGDIR on $BASE.
pg_ctl_start() {
  local pgdir=$1 durable=off
  [[ ${MAILSHIFT_PG_FSYNC:-0} == 1 ]] && durable=on
  runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $BASE -c unix_socket_directories=$pgdir \
        -c fsync=$durable -c synchronous_commit=$durable -c full_page_writes=$durable" \
    start >/dev/null 2>&1 || fail_with_log "PostgreSQL" "$pgdir/postgres.log"
}

start_pg() {
  local bin port=$BASE pgdir
  bin=$(pg_bindir)
  # initdb refuses root: the cluster belongs to the postgres user, which must
  # be able to reach it. Use DIR/pg when it can, else a private dir in /tmp.
  if runuser -u postgres -- test -x "$DIR"; then
    pgdir=$DIR/pg
    mkdir -p "$pgdir"
  else
    pgdir=$(mktemp -d /tmp/mailshift-pg.XXXXXX)
  fi
  echo "$pgdir" >"$DIR/pg.dir"
  chown postgres: "$pgdir"
  chmod 700 "$pgdir"
  if [[ ! -s $pgdir/data/PG_VERSION ]]; then
    runuser -u postgres -- "$bin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 \
      --no-locale >"$pgdir/initdb.log" 2>&1 || fail_with_log "initdb" "$pgdir/initdb.log"
  fi
  pg_ctl_start "$pgdir"
  for _ in $(seq 50); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.2
  done
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || fail_with_log "PostgreSQL" "$pgdir/postgres.log"
  if [[ -z $(runuser -u postgres -- "$bin/psql" -h "$pgdir" -p "$port" -U postgres -Atc \
        "SELECT 1 FROM pg_database WHERE datname = 'mailshift'") ]]; then
    runuser -u postgres -- "$bin/createdb" -h "$pgdir" -p "$port" -U postgres mailshift
  fi
  PGDIR=$pgdir
}

stop_pg() {
  local pgdir
  [[ -f $DIR/pg.dir ]] || return 0
  pgdir=$(cat "$DIR/pg.dir")
  if [[ -f $pgdir/data/postmaster.pid ]]; then
    runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [[ $pgdir == /tmp/mailshift-pg.* ]]; then
    rm -rf "$pgdir"
    rm -f "$DIR/pg.dir"
  fi
}

# pg-restart: a fast restart of PostgreSQL, for failover tests.
restart_pg() {
  local pgdir
  pgdir=$(cat "$DIR/pg.dir")
  runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$pgdir/data" -m fast -w -t 30 restart \
    >/dev/null 2>&1 || fail_with_log "PostgreSQL restart" "$pgdir/postgres.log"
}

# pg-stop / pg-start: PostgreSQL down and up again, its data kept (tests of
# readiness and of what answers while the database is away).
pause_pg() {
  runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$(cat "$DIR/pg.dir")/data" -m fast -w stop \
    >/dev/null 2>&1 || die "PostgreSQL did not stop"
}
unpause_pg() { pg_ctl_start "$(cat "$DIR/pg.dir")"; }

# --- Dovecot -----------------------------------------------------------------
# write_dovecot NAME IMAP_PORT IMAPS_PORT: the common part of every instance.
# The master, auth and log processes run as root, so they read files under
# DIR whatever its owner. Login processes refuse root (dovenull comes with the
# package) and so does mail access: mail belongs to Debian's 'mail' user and
# DIR/NAME/mail is owned by it; fill_maildir.py gives new files the owner of
# that directory. Users come from a passwd-file Dovecot rereads on change.
write_dovecot() {
  local name=$1 imap=$2 imaps=$3 d=$DIR/$1
  mkdir -p "$d/run" "$d/state" "$d/mail"
  chmod 755 "$d"
  chown mail:mail "$d/mail"
  touch "$d/users"
  cat >"$d/dovecot.conf" <<EOF
# Generated by tests/infra/stack.sh for the '$name' test instance.
instance_name = mailshift-$name-$imap
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap
# Store messages as CRLF, byte for byte as appended (a bare CR stays).
mail_save_crlf = yes
listen = 127.0.0.1
shutdown_clients = yes

default_internal_user = root
default_internal_group = root
default_login_user = dovenull
first_valid_uid = 1
first_valid_gid = 1
mail_uid = mail
mail_gid = mail

ssl = yes
ssl_cert = <$DIR/tls/server.pem
ssl_key = <$DIR/tls/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login oauthbearer xoauth2
auth_master_user_separator = *
mail_max_userip_connections = 50

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$d/mail/%u
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps
    ssl = yes
  }
}
EOF
}

write_src() {
  local d=$DIR/src
  write_dovecot src $((BASE + 1)) $((BASE + 2))
  printf 'admin:{PLAIN}adminpw::::::\n' >"$d/masters"
  cat >>"$d/dovecot.conf" <<EOF

# Master user: PLAIN with authzid=USER, authcid=admin (or LOGIN USER*admin).
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/masters
  master = yes
}

mail_location = maildir:~/Maildir:LAYOUT=fs
mail_plugins = \$mail_plugins
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
    auto = no
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = no
  }
  mailbox Trash {
    special_use = \\Trash
    auto = no
  }
  mailbox Junk {
    special_use = \\Junk
    auto = no
  }
}
EOF
}

write_dst() {
  local d=$DIR/dst
  write_dovecot dst $((BASE + 3)) $((BASE + 4))
  cat >>"$d/dovecot.conf" <<EOF

# Maildir++ ('.' delimiter) and special-use names unlike src's.
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox "Deleted Messages" {
    special_use = \\Trash
    auto = create
  }
  mailbox Spam {
    special_use = \\Junk
    auto = create
  }
}

# No storage limit, but a message over 5 MB is refused (APPENDLIMIT=5242880).
mail_plugins = \$mail_plugins quota
plugin {
  quota = count:User quota
  quota_rule = *:storage=0
  quota_vsizes = yes
  quota_max_mail_size = 5M
}
EOF
}

write_dst2() {
  local d=$DIR/dst2
  write_dovecot dst2 $((BASE + 5)) $((BASE + 6))
  cat >>"$d/dovecot.conf" <<EOF

# Dovecot 2.3.19's default post-login capabilities without MULTIAPPEND.
imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE

mail_location = maildir:~/Maildir:LAYOUT=fs
mail_plugins = \$mail_plugins
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
    auto = no
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = no
  }
  mailbox Trash {
    special_use = \\Trash
    auto = no
  }
  mailbox Junk {
    special_use = \\Junk
    auto = no
  }
}
EOF
}

# imap_greets PORT: true once an IMAP server there sends its "* OK" greeting.
imap_greets() {
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$1" && read -r -t 2 line <&3 && exec 3>&-; } 2>/dev/null || return 1
  [[ $line == "* OK"* ]]
}

start_dovecot() {
  local name=$1 port=$2 d=$DIR/$1
  doveconf -c "$d/dovecot.conf" >/dev/null 2>"$d/doveconf.err" || fail_with_log "dovecot $name (config)" "$d/doveconf.err"
  dovecot -c "$d/dovecot.conf" </dev/null >"$d/dovecot.out" 2>&1 || fail_with_log "dovecot $name" "$d/dovecot.out"
  for _ in $(seq 50); do
    if [[ -s $d/run/master.pid ]] && imap_greets "$port"; then
      cp "$d/run/master.pid" "$d/dovecot.pid"
      return 0
    fi
    sleep 0.1
  done
  cat "$d/dovecot.out" >&2
  fail_with_log "dovecot $name" "$d/dovecot.log"
}

# alive PID: the process exists and is not a zombie (nobody may reap it here).
alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $stat != Z* ]]
}

# wait_gone PID...: wait up to 10 s for the processes to exit, then SIGKILL.
wait_gone() {
  local pid
  for _ in $(seq 100); do
    for pid in "$@"; do alive "$pid" && break; pid=; done
    [[ -z $pid ]] && return 0
    sleep 0.1
  done
  kill -9 "$@" 2>/dev/null || true
}

# stop_dovecots NAME...: the masters take ~3 s to shut down, so stop them together.
stop_dovecots() {
  local name f pids=()
  for name in "$@"; do
    for f in "$DIR/$name/dovecot.pid" "$DIR/$name/run/master.pid"; do
      [[ -s $f ]] || continue
      pids+=("$(cat "$f")")
      break
    done
  done
  ((${#pids[@]})) || return 0
  kill "${pids[@]}" 2>/dev/null || true
  wait_gone "${pids[@]}"
  for name in "$@"; do rm -f "$DIR/$name/dovecot.pid"; done
}

# --- Kafka broker (deploy/broker, built by the project) ----------------------
broker_bin() {
  local bin=${MAILSHIFT_BUILD:-$repo/build}/deploy/broker/mailshift-broker
  [[ -x $bin ]] || die "broker binary $bin not found: build the project first (or MAILSHIFT_NO_BROKER=1)"
  echo "$bin"
}

start_broker() {
  local bin
  bin=$(broker_bin)
  rm -f "$DIR/brokers"
  "$bin" --bootstrap-file "$DIR/brokers" </dev/null >"$DIR/broker.log" 2>&1 &
  echo $! >"$DIR/broker.pid"
  for _ in $(seq 100); do
    [[ -s $DIR/brokers ]] && return 0
    alive "$(cat "$DIR/broker.pid")" || break
    sleep 0.1
  done
  fail_with_log "broker" "$DIR/broker.log"
}

stop_broker() {
  [[ -f $DIR/broker.pid ]] || return 0
  kill "$(cat "$DIR/broker.pid")" 2>/dev/null || true
  wait_gone "$(cat "$DIR/broker.pid")"
  rm -f "$DIR/broker.pid" "$DIR/brokers"
}

# emit VAR VALUE: one export line, the value single-quoted.
emit() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }

write_env() {
  local name upper port=$BASE
  {
    echo "# Generated by tests/infra/stack.sh start $DIR"
    emit MAILSHIFT_STACK_DIR "$DIR"
    emit MAILSHIFT_DB "host=127.0.0.1 port=$BASE dbname=mailshift user=postgres"
    emit MAILSHIFT_PG_PORT "$BASE"
    emit MAILSHIFT_PG_SOCKET_DIR "$PGDIR"
    emit MAILSHIFT_CA_FILE "$DIR/tls/ca.pem"
    [[ ${MAILSHIFT_NO_BROKER:-0} == 1 ]] || emit MAILSHIFT_BROKERS_FILE "$DIR/brokers"
    for name in src dst dst2; do
      upper=${name^^}
      emit "${upper}_HOST" 127.0.0.1
      emit "${upper}_PORT" $((++port))
      emit "${upper}_TLS_PORT" $((++port))
      emit "${upper}_DIR" "$DIR/$name"
      emit "${upper}_CONF" "$DIR/$name/dovecot.conf"
    done
  } >"$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
}

do_stop() {
  stop_broker
  stop_dovecots src dst dst2
  stop_pg
  rm -f "$DIR/env"
}

do_start() {
  [[ ! -f $DIR/env ]] || die "$DIR/env exists: stack already running? (stack.sh stop $DIR)"
  [[ ${MAILSHIFT_NO_BROKER:-0} == 1 ]] || broker_bin >/dev/null
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  runuser -u mail -- test -x "$DIR" ||
    die "$DIR is not reachable by the 'mail' user Dovecot reads mail as (use a dir under /tmp or $repo)"
  # A failed start leaves nothing running.
  trap 'echo "stack.sh: start failed, stopping what was started" >&2; do_stop' EXIT
  make_tls
  start_pg
  write_src
  write_dst
  write_dst2
  start_dovecot src $((BASE + 1))
  start_dovecot dst $((BASE + 3))
  start_dovecot dst2 $((BASE + 5))
  [[ ${MAILSHIFT_NO_BROKER:-0} == 1 ]] || start_broker
  write_env
  trap - EXIT
  echo "stack.sh: up in $DIR (ports $BASE-$((BASE + 6))); source $DIR/env"
}

[[ $# -eq 2 ]] || usage
[[ $2 == /* ]] || usage
DIR=${2%/}
BASE=${MAILSHIFT_PORT_BASE:-14300}
case $1 in
  start) do_start ;;
  stop) do_stop ;;
  pg-restart) restart_pg ;;
  pg-stop) pause_pg ;;
  pg-start) unpause_pg ;;
  *) usage ;;
esac
