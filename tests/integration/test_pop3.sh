#!/usr/bin/env bash
# End-to-end tests of POP3 sources against Dovecot's real pop3 service (the
# source instance serves the same maildirs over IMAP, which the independent
# verifier reads: the POP3 maildrop is the INBOX) and a scripted POP3 server
# for the faults a real one will not make:
#   - every message of the maildrop in the destination INBOX, byte-exact,
#     over implicit TLS (certificate verified) and over STLS;
#   - a second pass after new mail copies only the new messages;
#   - the source maildrop unchanged: its message files (names carry the
#     flags) before and after, and the server never got a DELE or a QUIT;
#   - a worker killed with SIGKILL mid-pass: resumed without duplicates or
#     losses;
#   - a RETR answered -ERR: a message error with the server's words, the
#     rest copied; a connection dropped mid-RETR: resumed; a server that
#     stops answering mid-RETR: the account fails within the I/O bound.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-pop3-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19300}
export MAILSHIFT_SRC_POP3=1
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

suite_start

# deliver USER FROM N: N corpus messages (sorted, from index FROM) into the
# user's source INBOX as new mail (Maildir/new), owned like Dovecot's own,
# each file's mtime (Dovecot's INTERNALDATE) its Date header, as a delivery
# agent would.  Left out: messages without a Date header in RFC 5322 syntax
# (obsolete or broken ones, "GMT+1", "29 Jul 01 11:34:44 AM", are read
# differently by every parser; the copy's INTERNALDATE is then the time of
# the copy) and messages whose last line has no line end (POP3 cannot carry
# that: RFC 1939 3).
deliver() {
  python3 - "$infra" "$corpus" "$SRC_DIR/mail/$1/Maildir" "$2" "$3" <<'PY'
import os, re, shutil, sys, time
sys.path.insert(0, sys.argv[1])
import fill_maildir
corpus, maildir, start, n = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
st = os.stat(os.path.dirname(os.path.dirname(maildir)))
for sub in ("", "new", "cur", "tmp"):
    d = os.path.join(maildir, sub)
    os.makedirs(d, exist_ok=True)
    os.chown(d, st.st_uid, st.st_gid)
names = sorted(f for f in os.listdir(corpus) if f.endswith(".txt"))[start:]
fallback = fill_maildir.FALLBACK_DATE.timestamp()
strict = re.compile(rb"^Date:[ \t]*(?:[A-Z][a-z]{2},[ \t]*)?\d{1,2} [A-Z][a-z]{2} \d{4} "
                    rb"\d{2}:\d{2}(?::\d{2})? [+-]\d{4}[ \t]*(?:\([^)]*\))?[ \t]*\r?$", re.M)
done = 0
for name in names:
    if done == n:
        break
    data = open(os.path.join(corpus, name), "rb").read()
    when = fill_maildir.message_date(data)
    head = data[: data.find(b"\n\n")]
    if not data.endswith(b"\n") or when == fallback or len(re.findall(rb"^Date:", head, re.M | re.I)) != 1 \
            or not strict.search(head):
        continue
    dst = os.path.join(maildir, "new", "%d.M%dP%d.pop3test" % (int(time.time()), done + start, os.getpid()))
    with open(dst, "wb") as f:
        f.write(data)
    os.chown(dst, st.st_uid, st.st_gid)
    os.utime(dst, (when, when))
    done += 1
PY
}

# maildrop USER: the user's INBOX messages, one a line: file name, flags (the
# maildir info after ":2,") and a hash of the bytes.  Where a file lies (new/
# or cur/) is left out: Dovecot moves new mail to cur/ when any session, IMAP
# or POP3, opens the mailbox (its \Recent), without changing name or flags.
maildrop() {
  python3 - "$SRC_DIR/mail/$1/Maildir" <<'PY'
import hashlib, os, sys
out = []
for sub in ("new", "cur"):
    d = os.path.join(sys.argv[1], sub)
    for f in os.listdir(d):
        base, _, info = f.partition(":2,")
        out.append("%s %s %s" % (base, info, hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()))
print("\n".join(sorted(out)))
PY
}

# pop3_json PORT TLS: a POP3 source profile.
pop3_json() {
  printf '{"host": "127.0.0.1", "port": %s, "tls": "%s", "ca_file": "%s", "protocol": "pop3",
           "auth": "plain", "max_connections": 10}' "$1" "$2" "$MAILSHIFT_CA_FILE"
}

# copied MIGRATION PASS: messages the pass copied, over all its folders.
copied() {
  sql "SELECT coalesce(sum(pf.messages), 0) FROM pass_folders pf JOIN folders f ON f.id = pf.folder_id
       JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $1 AND pf.number = $2"
}

# --- implicit TLS: the whole maildrop, byte-exact; unchanged source --------
add_user SRC pa papw
add_user DST pa papw
deliver pa 0 300
maildrop pa >"$work/pa.before"
plan=$(make_plan pa "$(pop3_json "$SRC_POP3S_PORT" implicit)" "$(server_json dst "$DST_PORT" none)" \
  "pa,papw,pa,papw")
m_pa=$(import_plan "$plan")
check "POP3 credentials verified over TLS" \
  test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_pa")" = verified
worker_start
check "pass 1 of a POP3 account ends synced" run_pass "$m_pa" 1
check "pass 1 copied the 300 messages of the maildrop" test "$(copied "$m_pa" 1)" = 300
maildrop pa >"$work/pa.after1"
check "the source maildrop is unchanged by pass 1 (files and flags)" \
  cmp -s "$work/pa.before" "$work/pa.after1"
check "the destination INBOX holds the maildrop byte-exact (verify --strict)" \
  verify pa:papw "$DST_PORT" pa:papw --account pa --strict
"$COORD" status "$m_pa" pa >"$work/pa.status" 2>>"$work/coordinator.log"
check "status shows the account: 1 folder, 300 messages" \
  grep -Eq "synced .* folders 1 +messages 300 " "$work/pa.status"
check "its folder is INBOX, checkpointed like an IMAP one" \
  test "$(sql "SELECT f.src_name || ' ' || f.dst_name || ' ' || f.high_water FROM folders f
               JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m_pa")" = "INBOX INBOX 300"

# --- a second pass copies only the new mail --------------------------------
deliver pa 300 25
maildrop pa >"$work/pa.before2"
check "pass 2 ends synced" run_pass "$m_pa" 2
check "pass 2 copied exactly the 25 new messages" test "$(copied "$m_pa" 2)" = 25
maildrop pa >"$work/pa.after2"
check "the source maildrop is unchanged by pass 2" cmp -s "$work/pa.before2" "$work/pa.after2"
check "after pass 2 the destination is exact (no duplicates)" \
  verify pa:papw "$DST_PORT" pa:papw --account pa --strict
check "pass 3 without new mail copies nothing" run_pass "$m_pa" 3
check "pass 3 copied 0 messages" test "$(copied "$m_pa" 3)" = 0
check "Dovecot's log: messages read with TOP, none with RETR, none deleted" \
  bash -c "grep -q 'pop3(pa).*top=[1-9]' '$SRC_DIR/dovecot.log' &&
           ! grep -Eq 'pop3\\(pa\\).*(retr=[1-9]|del=[1-9])' '$SRC_DIR/dovecot.log'"
worker_stop

# --- STLS ------------------------------------------------------------------
add_user SRC ps pspw
add_user DST ps pspw
deliver ps 400 40
plan=$(make_plan ps "$(pop3_json "$SRC_POP3_PORT" starttls)" "$(server_json dst "$DST_PORT" none)" \
  "ps,pspw,ps,pspw")
m_ps=$(import_plan "$plan")
worker_start
check "a POP3 account over STLS ends synced" run_pass "$m_ps" 1
check "over STLS: the destination is exact" verify ps:pspw "$DST_PORT" ps:pspw --account ps --strict
worker_stop

# A certificate that does not verify (no CA file: the system store does not
# know the stack's CA) is refused, never copied from.
add_user SRC pc pcpw
add_user DST pc pcpw
plan=$(make_plan pc "$(pop3_json "$SRC_POP3S_PORT" implicit | sed 's/"ca_file": "[^"]*",//')" \
  "$(server_json dst "$DST_PORT" none)" "pc,pcpw,pc,pcpw")
m_pc=$(import_plan "$plan")
check "an unverifiable POP3 certificate fails verification" \
  test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_pc")" = verify_failed
check "... with the certificate named in the reason" \
  bash -c "psql '$MAILSHIFT_DB' -qAt -c \"SELECT last_error FROM accounts WHERE migration_id = $m_pc\" |
           grep -qi certificate"

# --- pop3_seen, and a message without a Date header ----------------------
add_user SRC pn pnpw
add_user DST pn pnpw
deliver pn 600 2
python3 - "$SRC_DIR/mail/pn/Maildir/new" <<'PY'
import os, sys
st = os.stat(sys.argv[1])
path = os.path.join(sys.argv[1], "1700000000.M1P1.nodate")
with open(path, "wb") as f:
    f.write(b"From: a@example.org\nSubject: no date header\n\nbody\n")
os.chown(path, st.st_uid, st.st_gid)
PY
maildrop pn >"$work/pn.before"
plan=$(make_plan pn "$(pop3_json "$SRC_POP3S_PORT" implicit | sed 's/"protocol"/"pop3_seen": true, "protocol"/')" \
  "$(server_json dst "$DST_PORT" none)" "pn,pnpw,pn,pnpw")
m_pn=$(import_plan "$plan")
worker_start
t_start=$(date +%s)
check "pop3_seen: the account ends synced" run_pass "$m_pn" 1
t_end=$(date +%s)
worker_stop
maildrop pn >"$work/pn.after"
check "pop3_seen: the source keeps its flags (none)" cmp -s "$work/pn.before" "$work/pn.after"
check "pop3_seen: every copy is \\Seen; the dateless one dated at its copy, the others by Date" \
  python3 - "$DST_PORT" "$t_start" "$t_end" <<'PY'
import imaplib, sys, time, email.utils
port, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = imaplib.IMAP4("127.0.0.1", port)
c.login("pn", "pnpw")
c.select("INBOX", readonly=True)
typ, data = c.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE)])")
metas = [d[0] for d in data if isinstance(d, tuple)]
heads = [d[1] for d in data if isinstance(d, tuple)]
assert len(metas) == 3, metas
for meta, head in zip(metas, heads):
    assert b"\\Seen" in meta, meta
    when = time.mktime(imaplib.Internaldate2tuple(meta))
    if head.strip():
        want = email.utils.parsedate_to_datetime(head.decode().split(":", 1)[1].strip()).timestamp()
        assert abs(when - want) < 1, (meta, head)
    else:
        assert t0 - 2 <= when <= t1 + 2, (meta, t0, t1)
PY

# --- SIGKILL mid-pass: resumed without duplicates or losses ----------------
add_user SRC pk pkpw
add_user DST pk pkpw
deliver pk 1000 2500
maildrop pk >"$work/pk.before"
plan=$(make_plan pk "$(pop3_json "$SRC_POP3S_PORT" implicit)" "$(server_json dst "$DST_PORT" none)" \
  "pk,pkpw,pk,pkpw")
m_pk=$(import_plan "$plan")
"$COORD" pass "$m_pk" 1 2>>"$work/coordinator.log"
kills=0
for round in $(seq 1 12); do
  LEASE_TTL=2 worker_start --batch-count 10 || break
  for _ in $(seq 1 200); do grep -q "pass 1 started" "$worker_log" && break; sleep 0.05; done
  sleep "0.$((RANDOM % 9))$((RANDOM % 10))"
  if kill -KILL "$worker_pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$worker_pid" 2>/dev/null
  worker_pid=
  [[ $(sql "SELECT pass_done FROM accounts WHERE migration_id = $m_pk") == 1 ]] && break
  [[ $kills -ge 5 ]] && break
done
LEASE_TTL=2 worker_start
"$COORD" wait "$m_pk" 1 300 >/dev/null 2>>"$work/coordinator.log"
worker_stop
check "SIGKILL: worker killed $kills times mid-pass (at least 3)" test "$kills" -ge 3
check "SIGKILL: some kill hit a batch in flight (an intent re-matched)" \
  grep -q "re-matching an interrupted batch" "$work"/worker.*.log
check "SIGKILL: the account ends synced" \
  test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_pk")" = synced
check "SIGKILL: the copy is exact (0 missing, 0 duplicated)" \
  verify pk:pkpw "$DST_PORT" pk:pkpw --account pk --strict
maildrop pk >"$work/pk.after"
check "SIGKILL: the source maildrop is unchanged" cmp -s "$work/pk.before" "$work/pk.after"

# --- faults of a scripted POP3 server -------------------------------------
# dst_bodies_match USER PASS DUMPDIR SKIP: the destination INBOX holds exactly
# the dumped messages but number SKIP (0: none), byte for byte.
dst_bodies_match() {
  python3 - "$DST_PORT" "$@" <<'PY'
import imaplib, os, sys
port, user, pw, dump, skip = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
want = sorted(open(os.path.join(dump, f), "rb").read() for f in os.listdir(dump)
              if f != "%d.eml" % skip)
c = imaplib.IMAP4("127.0.0.1", port)
c.login(user, pw)
c.select("INBOX", readonly=True)
typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
got = sorted(part[1] for part in data if isinstance(part, tuple))
if got != want:
    sys.exit("destination has %d messages, %d expected; equal: %s" % (len(got), len(want), got == want))
PY
}

fake_account() { # NAME PORT: a migration from the fake on PORT; prints its id
  add_user DST "$1" "${1}pw" >/dev/null
  local plan
  plan=$(make_plan "$1" "$(printf '{"host": "127.0.0.1", "port": %s, "tls": "none", "protocol": "pop3",
    "auth": "login", "max_connections": 2}' "$2")" "$(server_json dst "$DST_PORT" none)" \
    "u,p,$1,${1}pw")
  import_plan "$plan"
}

serve fake_err python3 "$infra/fake_pop3.py" --port 0 --messages 30 --err-retr 7 \
  --dump "$work/fake_err" --log "$work/fake_err.log"
m_fe=$(fake_account fe "$served_port")
worker_start
check "RETR -ERR: the account ends synced" run_pass "$m_fe" 1
check "RETR -ERR: the other 29 messages copied byte-exact" dst_bodies_match fe fepw "$work/fake_err" 7
check "RETR -ERR: a message error with the server's words" \
  test "$(sql "SELECT count(*) FROM message_errors e JOIN accounts a ON a.id = e.account_id
               WHERE a.migration_id = $m_fe
               AND e.error LIKE '%-ERR [SYS/PERM] message 7 is damaged on disk%'")" = 1
check "RETR -ERR: no DELE and no QUIT sent" bash -c "! grep -Eq '^(DELE|QUIT)' '$work/fake_err.log'"

# Without TOP: the messages come with RETR.
serve fake_drop python3 "$infra/fake_pop3.py" --port 0 --messages 30 --drop-retr 12 --no-top \
  --dump "$work/fake_drop" --log "$work/fake_drop.log"
m_fd=$(fake_account fd "$served_port")
check "dropped mid-RETR: the account ends synced" run_pass "$m_fd" 1
check "dropped mid-RETR: it happened" grep -q "dropped mid-message 12" "$work/fake_drop.log"
check "dropped mid-RETR: every message copied once, byte-exact" \
  dst_bodies_match fd fdpw "$work/fake_drop" 0
worker_stop

serve fake_stall python3 "$infra/fake_pop3.py" --port 0 --messages 10 --stall-retr 4 \
  --dump "$work/fake_stall" --log "$work/fake_stall.log"
m_fs=$(fake_account fs "$served_port")
worker_start --io-timeout 2
t0=$(date +%s)
"$COORD" pass "$m_fs" 1 2>>"$work/coordinator.log"
for _ in $(seq 1 600); do
  st=$(sql "SELECT state FROM accounts WHERE migration_id = $m_fs")
  [[ $st == failed ]] && break
  sleep 0.1
done
secs=$(($(date +%s) - t0))
worker_stop
check "stalled mid-RETR: the account fails (state $st)" test "$st" = failed
check "stalled mid-RETR: within the bound ($secs s)" test "$secs" -le 40
check "stalled mid-RETR: the reason names the silent server" \
  bash -c "psql '$MAILSHIFT_DB' -qAt -c \"SELECT last_error FROM accounts WHERE migration_id = $m_fs\" |
           grep -Eq 'RETR 4|took no data|sent only|no answer'"

check "no password in any log of the suite" \
  bash -c "! grep -qE 'papw|pspw|pnpw|pkpw|fepw|fdpw|fspw' '$work'/*.log '$SRC_DIR/dovecot.log'"

suite_end
