#!/usr/bin/env bash
# Contacts and calendars end to end, between two real CardDAV/CalDAV servers
# (Radicale, run here as the suite's own processes over TLS) beside the mail
# stack (PostgreSQL, Dovecot, the broker): a migration copies an account's
# mail and then its address books and calendars (discovered through the
# well-known URLs) into collections of the same names, every object
# byte-identical, an object the destination refuses recorded with its words;
# a second pass after one change on the source copies that one only; the
# source is never written to; a .vcf and a .ics import, twice.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-dav-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19700}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

dav_cleanup() {
  bash "$infra/radicale.sh" stop "$work/dav-src" 2>/dev/null
  bash "$infra/radicale.sh" stop "$work/dav-dst" 2>/dev/null
  suite_cleanup
}
suite_start
trap dav_cleanup EXIT

# --- two DAV servers; the destination takes bodies up to 100000 bytes --------
src_dav_port=$((MAILSHIFT_PORT_BASE + 20))
dst_dav_port=$((MAILSHIFT_PORT_BASE + 21))
tls=$MAILSHIFT_STACK_DIR/tls
ca=$MAILSHIFT_CA_FILE
RADICALE_CA=$ca bash "$infra/radicale.sh" start "$work/dav-src" "$src_dav_port" \
  "$tls/server.pem" "$tls/server.key" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
RADICALE_CA=$ca RADICALE_MAX_CONTENT=100000 bash "$infra/radicale.sh" start "$work/dav-dst" \
  "$dst_dav_port" "$tls/server.pem" "$tls/server.key" >/dev/null ||
  { echo "0 passed, 1 failed"; exit 1; }
src_url=https://localhost:$src_dav_port/
dst_url=https://localhost:$dst_dav_port/
srcdav() { python3 "$infra/davtool.py" "$src_url" "$1" "$2" "$ca" "${@:3}"; }
dstdav() { python3 "$infra/davtool.py" "$dst_url" "$1" "$2" "$ca" "${@:3}"; }
# Requests that write, as each server logged them.
writes() { grep -cE '\] (PUT|MKCOL|MKCALENDAR|DELETE|PROPPATCH|MOVE|COPY) request' "$work/$1/log"; }
puts() { grep -c '\] PUT request' "$work/$1/log"; }

# alice: mail and DAV on both sides; bob: an empty account for the imports.
add_user SRC alice alicepw
add_user DST alice dstpw
add_user SRC bob bobpw
add_user DST bob bobdst
fill_corpus alice 30
bash "$infra/radicale.sh" user "$work/dav-src" alice alicepw
bash "$infra/radicale.sh" user "$work/dav-dst" alice dstpw
bash "$infra/radicale.sh" user "$work/dav-src" bob bobpw
bash "$infra/radicale.sh" user "$work/dav-dst" bob bobdst
srcdav alice alicepw fill || { echo "0 passed, 1 failed"; exit 1; }
srcdav alice alicepw snapshot "$work/src-before.json"
src_writes_before=$(writes dav-src)

with_dav() { printf '%s, "dav": {"url": "%s", "ca_file": "%s"}}' "${1%\}}" "$2" "$ca"; }
plan=$(make_plan dav \
  "$(with_dav "$(server_json source "$SRC_PORT" none)" "$src_url")" \
  "$(with_dav "$(server_json destination "$DST_PORT" none)" "$dst_url")" \
  alice,alicepw,alice,dstpw bob,bobpw,bob,bobdst)
m=$(import_plan "$plan")
check "plan with dav profiles imported" test -n "$m"
check "dav url stored per profile" \
  test "$(sql "SELECT count(*) FROM servers WHERE migration_id = $m AND dav_url LIKE 'https://localhost:%'")" = 2
# A killed worker's lease ends soon (pass 5).
export LEASE_TTL=12
worker_start || { echo "0 passed, 1 failed"; exit 1; }

# --- pass 1: mail, then every collection ----------------------------------
run_pass "$m" 1 >"$work/pass1.out"
check "pass 1 ends synced" grep -q "^account .*alice .*synced" "$work/pass1.out"
check "mail copied exactly" verify alice:alicepw "$DST_PORT" alice:dstpw --account dav-pass1
check "every collection and object on the destination, byte-identical (same names)" \
  dstdav alice dstpw compare "$work/src-before.json" --skip big
"$COORD" status "$m" >"$work/status1.out" 2>&1
check "status: 5 collections, 5 contacts, 4 events, 1 refused" \
  grep -q "contacts and calendars: 5 collections, 5 contacts, 4 events on the destination, 1 refused" \
  "$work/status1.out"
check "status names the refusal with the server's status" grep -q "huge.vcf: PUT .* HTTP 413" \
  "$work/status1.out"
alice=$(sql "SELECT id FROM accounts WHERE migration_id = $m AND src_login = 'alice'")
counts() { sql "SELECT dav_contacts || ' ' || dav_events || ' ' || dav_failed FROM pass_accounts WHERE account_id = $alice AND number = $1"; }
check "pass 1 counts: 5 contacts, 4 events, 1 failed" test "$(counts 1)" = "5 4 1"
check "the refused object is recorded with its error" \
  test "$(sql "SELECT count(*) FROM dav_objects o JOIN dav_collections c ON c.id = o.collection_id WHERE c.account_id = $alice AND o.error LIKE '%413%' AND o.src_href LIKE '%/big/huge.vcf'")" = 1
check "the big address book exists on the destination, without the refused contact" \
  test "$(dstdav alice dstpw count big)" = 0
check "the worker's log holds no password" bash -c "! grep -qE 'alicepw|dstpw' '$worker_log'"
check "the source was never written to" test "$(writes dav-src)" = "$src_writes_before"

# --- pass 2 after one change on the source -------------------------------
srcdav alice alicepw change
srcdav alice alicepw snapshot "$work/src-changed.json"
src_writes_before=$(writes dav-src)
dst_puts_before=$(puts dav-dst)
src_reports_before=$(grep -c '\] REPORT request' "$work/dav-src/log")
run_pass "$m" 2 >"$work/pass2.out"
check "pass 2 listed the source's collections by sync-collection" \
  test "$(($(grep -c '\] REPORT request' "$work/dav-src/log") - src_reports_before))" -ge 5
check "a sync-token is kept per collection" \
  test "$(sql "SELECT count(*) FROM dav_collections WHERE account_id = $alice AND sync_token LIKE 'http%'")" = 5
check "pass 2 ends synced" grep -q "^account .*alice .*synced" "$work/pass2.out"
check "pass 2 copied one contact and nothing else" test "$(counts 2)" = "1 0 0"
check "the destination saw exactly one PUT in pass 2" \
  test "$(($(puts dav-dst) - dst_puts_before))" = 1
check "the changed contact and all others byte-identical after pass 2" \
  dstdav alice dstpw compare "$work/src-changed.json" --skip big
check "the source was not written to in pass 2" test "$(writes dav-src)" = "$src_writes_before"
check "the source holds what it held" srcdav alice alicepw compare "$work/src-changed.json"
"$COORD" status "$m" >"$work/status2.out" 2>&1
check "status: this pass 1 contact" grep -q "this pass: 1 contacts, 0 events copied, 0 refused" \
  "$work/status2.out"

# --- pass 3 with nothing changed, the sync-tokens forgotten by the source
# (RFC 6578 3.2): listed whole again, nothing copied, no PUT ---------------
sql "UPDATE dav_collections SET sync_token = 'http://radicale.org/ns/sync/0000' WHERE account_id = $alice" >/dev/null
dst_puts_before=$(puts dav-dst)
run_pass "$m" 3 >"$work/pass3.out"
check "pass 3 ends synced despite unknown sync-tokens" grep -q "^account .*alice .*synced" \
  "$work/pass3.out"
check "pass 3 with nothing changed copies nothing" test "$(counts 3)" = "0 0 0"
check "no PUT in pass 3" test "$(puts dav-dst)" = "$dst_puts_before"
check "fresh sync-tokens kept after pass 3" \
  test "$(sql "SELECT count(*) FROM dav_collections WHERE account_id = $alice AND sync_token LIKE 'http%' AND sync_token <> 'http://radicale.org/ns/sync/0000'")" = 5

# --- pass 4 after the records were lost (a run stopped between its PUTs and
# their records): every object is found already there, nothing copied twice --
sql "DELETE FROM dav_objects o USING dav_collections c WHERE c.id = o.collection_id AND c.account_id = $alice; UPDATE dav_collections SET sync_token = NULL WHERE account_id = $alice" >/dev/null
run_pass "$m" 4 >"$work/pass4.out"
check "pass 4 ends synced" grep -q "^account .*alice .*synced" "$work/pass4.out"
check "pass 4 copies nothing (all found equal), the big one refused again" \
  test "$(counts 4)" = "0 0 1"
check "the destination still holds each object once, byte-identical" \
  dstdav alice dstpw compare "$work/src-changed.json" --skip big
check "contacts still 3 in the destination's address book" \
  test "$(dstdav alice dstpw count contacts)" = 3

# --- pass 5: a worker killed -9 in the middle of an address book ------------
srcdav alice alicepw many 300
srcdav alice alicepw snapshot "$work/src-many.json"
many_puts() { grep -c '\] PUT request for .*/alice/many/' "$work/dav-dst/log"; }
"$COORD" pass "$m" 5 >/dev/null 2>>"$work/coordinator.log"
for _ in $(seq 1 1200); do (($(many_puts) >= 40)) && break; sleep 0.05; done
kill -KILL "$worker_pid"
wait "$worker_pid" 2>/dev/null
worker_pid=
killed_at=$(many_puts)
check "the worker was killed in the middle of the address book ($killed_at of 300 PUT)" \
  test "$killed_at" -ge 40 -a "$killed_at" -lt 300
worker_start || { echo "0 passed, 1 failed"; exit 1; }
"$COORD" wait "$m" 5 300 >"$work/pass5.out" 2>>"$work/coordinator.log"
check "pass 5 ends synced after the kill" grep -q "^account .*alice .*synced" "$work/pass5.out"
check "pass 5 took the lease twice" \
  test "$(sql "SELECT runs FROM pass_accounts WHERE account_id = $alice AND number = 5")" -ge 2
check "the destination holds the 300 contacts once each" \
  test "$(dstdav alice dstpw count many)" = 300
check "every object byte-identical after the kill" \
  dstdav alice dstpw compare "$work/src-many.json" --skip big
c5=$(counts 5)
check "pass 5 counted each contact once (at most one found already there): $c5" \
  bash -c "[[ '$c5' == '300 0 0' || '$c5' == '299 0 0' ]]"

# --- export-then-import: a .vcf and a .ics, each twice ----------------------
printf 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:imp-one\r\nFN:Élodie Dupré\r\nN:Dupré;Élodie;;;\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nUID:imp two ü\r\nFN:Øystein\r\nN:;Øystein;;;\r\nEND:VCARD\r\n' \
  >"$work/export.vcf"
python3 -c "
import sys; sys.path.insert(0, '$infra')
import davtool as t
ics = t.calendar(
    t.event('imp-weekly', 'Cours de français', ';TZID=Europe/Paris:20260105T180000',
            'RRULE:FREQ=WEEKLY;COUNT=10\n'),
    t.event('imp-weekly', 'Cours déplacé', ';TZID=Europe/Paris:20260113T180000',
            'RECURRENCE-ID;TZID=Europe/Paris:20260112T180000\n'),
    'BEGIN:VTODO\nUID:imp-todo\nDTSTAMP:20260101T000000Z\nSUMMARY:Réviser\nEND:VTODO\n',
    tz=True).replace('VERSION:2.0', 'VERSION:2.0\r\nMETHOD:PUBLISH')
open('$work/export.ics', 'w', newline='').write(ics)
"
"$COORD" import-dav "$m" bob "$work/export.vcf" >"$work/imp1.out" 2>&1
check "vcf import adds 2 vCards" grep -q "2 vCards from .*: 2 added, 0 already there, 0 refused" \
  "$work/imp1.out"
"$COORD" import-dav "$m" bob "$work/export.vcf" >"$work/imp2.out" 2>&1
check "the same vcf again adds nothing" grep -q ": 0 added, 2 already there, 0 refused" \
  "$work/imp2.out"
check "bob's contacts hold the 2 imported vCards" test "$(dstdav bob bobdst count contacts)" = 2
"$COORD" import-dav "$m" bob "$work/export.ics" >"$work/imp3.out" 2>&1
check "ics import adds 2 objects (an event with its override, a to-do)" \
  grep -q "2 calendar objects from .*: 2 added, 0 already there, 0 refused" "$work/imp3.out"
"$COORD" import-dav "$m" bob "$work/export.ics" >"$work/imp4.out" 2>&1
check "the same ics again adds nothing" grep -q ": 0 added, 2 already there, 0 refused" \
  "$work/imp4.out"
check "bob's calendar holds 2 objects" test "$(dstdav bob bobdst count calendar)" = 2
dstdav bob bobdst get calendar imp-weekly.ics >"$work/weekly.ics"
check "the recurring event keeps its override and its VTIMEZONE, without METHOD" \
  bash -c "grep -q 'RECURRENCE-ID' '$work/weekly.ics' && grep -q 'BEGIN:VTIMEZONE' '$work/weekly.ics' && ! grep -q 'METHOD' '$work/weekly.ics' && [ \$(grep -c 'BEGIN:VEVENT' '$work/weekly.ics') = 2 ]"
check "a UID with a space and non-ASCII names its resource" \
  bash -c "python3 '$infra/davtool.py' '$dst_url' bob bobdst '$ca' get contacts 'imp two ü.vcf' | grep -q 'Øystein'"
"$COORD" import-dav "$m" bob "$work/pass1.out" >"$work/imp5.out" 2>&1
check "a file that is neither vCard nor iCalendar is refused" \
  grep -q "neither a vCard (.vcf) nor an iCalendar (.ics) file" "$work/imp5.out"

suite_end
