/* Numbered schema migrations.  Each entry is applied once, in order, in its own
 * transaction, and recorded in schema_migrations.  Never edit an entry that has
 * shipped: append a new one.  store_schema_apply applies them (store-conn.h),
 * and the key check row is read and written here too. */
#include "schema.h"

#include "store-conn.h"
#include "store-private.h"

#include "account_state.h"
#include "log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
    /* 1: plans, accounts, checkpoints */
    "CREATE TABLE migrations ("
    "  id bigserial PRIMARY KEY,"
    "  name text NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE servers ("
    "  id bigserial PRIMARY KEY,"
    "  migration_id bigint NOT NULL REFERENCES migrations ON DELETE CASCADE,"
    "  role text NOT NULL CHECK (role IN ('source', 'destination')),"
    "  host text NOT NULL, port int NOT NULL, tls text NOT NULL,"
    "  ca_file text, auth text NOT NULL, master_user text,"
    "  max_connections int NOT NULL DEFAULT 10,"
    "  prefix text NOT NULL DEFAULT '', exclude text NOT NULL DEFAULT '',"
    "  UNIQUE (migration_id, role));"
    "CREATE TABLE accounts ("
    "  id bigserial PRIMARY KEY,"
    "  migration_id bigint NOT NULL REFERENCES migrations ON DELETE CASCADE,"
    "  src_login text NOT NULL, src_secret bytea NOT NULL,"
    "  dst_login text NOT NULL, dst_secret bytea NOT NULL,"
    "  priority int NOT NULL DEFAULT 5,"
    "  state text NOT NULL DEFAULT 'new',"
    "  pass int NOT NULL DEFAULT 0,"      /* the pass asked for */
    "  pass_done int NOT NULL DEFAULT 0," /* the last pass completed */
    "  lease_owner text, lease_epoch bigint NOT NULL DEFAULT 0, lease_expires timestamptz,"
    "  last_error text,"
    "  updated_at timestamptz NOT NULL DEFAULT now(),"
    "  UNIQUE (migration_id, src_login));"
    "CREATE TABLE account_log ("
    "  id bigserial PRIMARY KEY,"
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  at timestamptz NOT NULL DEFAULT now(),"
    "  from_state text, to_state text NOT NULL, reason text);"
    "CREATE TABLE folders ("
    "  id bigserial PRIMARY KEY,"
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  src_name text NOT NULL, dst_name text NOT NULL,"
    "  src_uidvalidity bigint NOT NULL DEFAULT 0, dst_uidvalidity bigint NOT NULL DEFAULT 0,"
    "  high_water bigint NOT NULL DEFAULT 0,"
    "  highest_modseq bigint NOT NULL DEFAULT 0,"
    "  src_uidnext bigint NOT NULL DEFAULT 0, src_messages bigint NOT NULL DEFAULT 0,"
    "  copied_messages bigint NOT NULL DEFAULT 0, copied_bytes bigint NOT NULL DEFAULT 0,"
    "  failed_messages bigint NOT NULL DEFAULT 0,"
    "  intent_dst_uidnext bigint NOT NULL DEFAULT 0, intent_uids bigint[],"
    "  rematch boolean NOT NULL DEFAULT false," /* re-match by identity pending */
    "  synced_at timestamptz,"
    "  UNIQUE (account_id, src_name));"
    /* Runs of consecutive UIDs: src_start..src_start+len-1 -> dst_start.. */
    "CREATE TABLE uid_map ("
    "  folder_id bigint NOT NULL REFERENCES folders ON DELETE CASCADE,"
    "  src_start bigint NOT NULL, dst_start bigint NOT NULL, len int NOT NULL,"
    "  PRIMARY KEY (folder_id, src_start));"
    "CREATE TABLE message_errors ("
    "  id bigserial PRIMARY KEY,"
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  folder_id bigint NOT NULL REFERENCES folders ON DELETE CASCADE,"
    "  src_uid bigint NOT NULL, error text NOT NULL,"
    "  at timestamptz NOT NULL DEFAULT now(),"
    "  UNIQUE (folder_id, src_uid));",
    /* 2: the scheduler's bookkeeping: when the account's job was last
     * published (NULL: a job is owed) */
    "ALTER TABLE accounts ADD COLUMN published_at timestamptz;"
    "CREATE INDEX accounts_due ON accounts (priority, id) WHERE state = 'queued';"
    "CREATE INDEX accounts_leased ON accounts (lease_expires) WHERE state = 'running';",
    /* 3: retries of failed accounts with backoff, up to an error budget */
    "ALTER TABLE accounts ADD COLUMN attempts int NOT NULL DEFAULT 0;"
    "ALTER TABLE accounts ADD COLUMN error_budget int NOT NULL DEFAULT 5;"
    "ALTER TABLE accounts ADD COLUMN retry_at timestamptz;",
    /* 4: per-server connection budgets: one row per allowed connection, held
     * by an account run as an expiring lease */
    "CREATE TABLE server_slots ("
    "  server_id bigint NOT NULL REFERENCES servers ON DELETE CASCADE,"
    "  slot int NOT NULL, owner text, expires timestamptz,"
    "  PRIMARY KEY (server_id, slot));"
    "CREATE INDEX server_slots_owner ON server_slots (owner);"
    "INSERT INTO server_slots (server_id, slot)"
    " SELECT id, generate_series(1, max_connections) FROM servers;",
    /* 5: several source profiles per migration; per-server rate limits and
     * per-account daily byte caps; blackout windows; passes as objects with
     * per-account and per-folder counts; live totals from workers' events */
    "ALTER TABLE servers ADD COLUMN name text NOT NULL DEFAULT 'default';"
    "ALTER TABLE servers DROP CONSTRAINT servers_migration_id_role_key;"
    "ALTER TABLE servers ADD CONSTRAINT servers_profile UNIQUE (migration_id, role, name);"
    "ALTER TABLE servers ADD COLUMN rate_messages int NOT NULL DEFAULT 0;" /* per second */
    "ALTER TABLE servers ADD COLUMN rate_bytes bigint NOT NULL DEFAULT 0;"
    /* Fleet-wide rate limit as a virtual clock: the time at which the server's
     * budget of messages and bytes is spent up to. */
    "ALTER TABLE servers ADD COLUMN rate_next timestamptz NOT NULL DEFAULT now();"
    "ALTER TABLE servers ADD COLUMN account_daily_bytes bigint NOT NULL DEFAULT 0;"
    "CREATE TABLE blackouts ("
    "  id bigserial PRIMARY KEY,"
    "  server_id bigint NOT NULL REFERENCES servers ON DELETE CASCADE,"
    "  weekdays int NOT NULL,"                  /* bit 0 = Monday ... bit 6 = Sunday */
    "  from_s int NOT NULL, to_s int NOT NULL," /* seconds of the local day */
    "  time_zone text NOT NULL);"
    /* Inside a window of the server now?  A window with from >= to runs over
     * midnight (its weekday is the day it starts); from = to is all day. */
    "CREATE FUNCTION server_blackout(sid bigint) RETURNS boolean LANGUAGE sql STABLE AS $$"
    " SELECT EXISTS (SELECT 1 FROM blackouts b,"
    "  LATERAL (SELECT now() AT TIME ZONE b.time_zone AS t) l,"
    "  LATERAL (SELECT extract(epoch FROM l.t::time) AS s,"
    "   (b.weekdays >> (extract(isodow FROM l.t)::int - 1)) & 1 = 1 AS today,"
    "   (b.weekdays >> (extract(isodow FROM l.t - interval '1 day')::int - 1)) & 1 = 1"
    "    AS yesterday) d"
    "  WHERE b.server_id = sid AND CASE WHEN b.from_s < b.to_s"
    "   THEN d.today AND d.s >= b.from_s AND d.s < b.to_s"
    "   ELSE (d.today AND d.s >= b.from_s) OR (d.yesterday AND d.s < b.to_s) END)"
    " $$;"
    "ALTER TABLE accounts ADD COLUMN src_server_id bigint REFERENCES servers;"
    "ALTER TABLE accounts ADD COLUMN dst_server_id bigint REFERENCES servers;"
    "UPDATE accounts a SET src_server_id = s.id FROM servers s"
    " WHERE s.migration_id = a.migration_id AND s.role = 'source';"
    "UPDATE accounts a SET dst_server_id = s.id FROM servers s"
    " WHERE s.migration_id = a.migration_id AND s.role = 'destination';"
    "ALTER TABLE accounts ALTER COLUMN src_server_id SET NOT NULL;"
    "ALTER TABLE accounts ALTER COLUMN dst_server_id SET NOT NULL;"
    "CREATE INDEX accounts_src_server ON accounts (src_server_id);"
    "CREATE INDEX accounts_dst_server ON accounts (dst_server_id);"
    /* The scheduler's step: the next queued accounts of each source server
     * in priority order, and the jobs published but not taken yet. */
    "DROP INDEX accounts_due;"
    "CREATE INDEX accounts_sched ON accounts (src_server_id, priority, id)"
    " WHERE state = 'queued';"
    "CREATE INDEX accounts_published ON accounts (published_at) WHERE state = 'queued';"
    "CREATE INDEX accounts_retry ON accounts (retry_at) WHERE state IN ('failed', 'waiting');"
    /* Operators name accounts by login, in any case. */
    "CREATE UNIQUE INDEX accounts_login ON accounts (migration_id, lower(src_login));"
    /* Removing an account deletes its history and errors by account. */
    "CREATE INDEX account_log_account ON account_log (account_id);"
    "CREATE INDEX message_errors_account ON message_errors (account_id);"
    /* Bytes moved on the account's UTC day `day` (daily caps); a row of its
     * own, so that folder threads adding to it never lock the account row
     * their fenced transactions share. */
    "CREATE TABLE account_days ("
    "  account_id bigint PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,"
    "  day date NOT NULL, bytes bigint NOT NULL);"
    "ALTER TABLE accounts ADD COLUMN lease_pass int NOT NULL DEFAULT 0;" /* the pass leased */
    "CREATE TABLE passes ("
    "  migration_id bigint NOT NULL REFERENCES migrations ON DELETE CASCADE,"
    "  number int NOT NULL,"
    "  kind text NOT NULL CHECK (kind IN ('bulk', 'delta', 'final')),"
    "  accounts int NOT NULL DEFAULT 0,"
    "  started_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (migration_id, number));"
    "CREATE TABLE pass_accounts ("
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  number int NOT NULL,"
    "  state text NOT NULL DEFAULT 'queued',"
    "  queued_at timestamptz NOT NULL DEFAULT now(),"
    "  started_at timestamptz, finished_at timestamptz,"
    "  runs int NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (account_id, number));"
    "CREATE TABLE pass_folders ("
    "  folder_id bigint NOT NULL REFERENCES folders ON DELETE CASCADE,"
    "  number int NOT NULL,"
    "  messages bigint NOT NULL DEFAULT 0, bytes bigint NOT NULL DEFAULT 0,"
    "  failed bigint NOT NULL DEFAULT 0,"
    "  started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz,"
    "  PRIMARY KEY (folder_id, number));"
    /* Workers and their free capacity, from their beats; a job is not
     * published while no live worker could start it. */
    "CREATE TABLE workers ("
    "  id text PRIMARY KEY, capacity int NOT NULL, running int NOT NULL,"
    "  seen_at timestamptz NOT NULL DEFAULT now());"
    "ALTER TABLE accounts ADD COLUMN publishes int NOT NULL DEFAULT 0;"
    "CREATE TABLE live_totals ("
    "  account_id bigint PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,"
    "  pass int NOT NULL, messages bigint NOT NULL, bytes bigint NOT NULL,"
    "  errors bigint NOT NULL, worker text, folder text,"
    "  updated_at timestamptz NOT NULL DEFAULT now());",
    /* The key check: a known constant encrypted under the key the secrets
     * of this database are encrypted with (one key per database), and that
     * key's id (an HMAC of it, not the key).  A worker or a coordinator
     * command whose key cannot decrypt it refuses to act. */
    "CREATE TABLE key_check ("
    "  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
    "  key_id text NOT NULL, check_value bytea NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now());",
    /* 7: a folder that failed (the destination would not create it, the
     * source would not open it, its data was invalid) is recorded with the
     * command and the server's words, and the account goes on with its other
     * folders; NULL = no error in its last try.  Messages found already in
     * the destination by content (a re-run, an account added back) are
     * mapped, not copied: counted apart. */
    "ALTER TABLE folders ADD COLUMN error text;"
    "ALTER TABLE folders ADD COLUMN matched_messages bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE pass_folders ADD COLUMN error text;"
    "ALTER TABLE pass_folders ADD COLUMN matched bigint NOT NULL DEFAULT 0;",
    /* 8: every column holding an account state takes only the states of
     * lib/store/account_state.h (the list is built from it).  Not
     * account_log.from_state: the lease take writes '' there (its old state
     * read back as NULL), in rows already stored too. */
    "ALTER TABLE accounts ADD CONSTRAINT accounts_state"
    "  CHECK (state IN (" ACCOUNT_STATE_SQL_LIST "));"
    "ALTER TABLE pass_accounts ADD CONSTRAINT pass_accounts_state"
    "  CHECK (state IN (" ACCOUNT_STATE_SQL_LIST "));"
    "ALTER TABLE account_log ADD CONSTRAINT account_log_to_state"
    "  CHECK (to_state IN (" ACCOUNT_STATE_SQL_LIST "));",
    /* 9: folder renames and merges an operator sets, per source profile
     * and per account (lib/imap/rules.h's text form) */
    "ALTER TABLE servers ADD COLUMN folder_rules text NOT NULL DEFAULT '';"
    "ALTER TABLE accounts ADD COLUMN folder_rules text NOT NULL DEFAULT '';"
    /* ... and the filters of a source profile: only mail since a date, none
     * larger than a size.  What they leave out is counted per folder and
     * pass (once: up to filtered_through), and a message left out for its
     * size is named with the reason. */
    "ALTER TABLE servers ADD COLUMN since date;"
    "ALTER TABLE servers ADD COLUMN max_message_bytes bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE folders ADD COLUMN filtered_messages bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE folders ADD COLUMN filtered_through bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE pass_folders ADD COLUMN filtered bigint NOT NULL DEFAULT 0;"
    "CREATE TABLE message_skips ("
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  folder_id bigint NOT NULL REFERENCES folders ON DELETE CASCADE,"
    "  src_uid bigint NOT NULL, reason text NOT NULL,"
    "  at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (folder_id, src_uid));"
    "CREATE INDEX message_skips_account ON message_skips (account_id);",
    /* 10: who or what caused each state change (store_actor_set: "api:NAME",
     * "command", "scheduler"; NULL where nobody said, the workers'), and the
     * messages and bytes copied per migration and minute, from the workers'
     * events as the active coordinator folds them (the throughput chart). */
    "ALTER TABLE account_log ADD COLUMN actor text"
    "  DEFAULT nullif(current_setting('mailshift.actor', true), '');"
    "CREATE TABLE throughput ("
    "  migration_id bigint NOT NULL REFERENCES migrations ON DELETE CASCADE,"
    "  minute timestamptz NOT NULL,"
    "  messages bigint NOT NULL DEFAULT 0, bytes bigint NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (migration_id, minute));",
    /* 11: proofs of completeness, the last per account (its report as JSON,
     * as the API shows it), and the keywords a destination refused, per
     * message (the message was copied without them).  A final pass's
     * accounts are proven once: proof_claimed_at marks the one taken. */
    "CREATE TABLE proofs ("
    "  account_id bigint PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,"
    "  at timestamptz NOT NULL DEFAULT now(),"
    "  trigger text NOT NULL," /* 'operator' or 'final' */
    "  exact boolean NOT NULL,"
    "  missing bigint NOT NULL, extra bigint NOT NULL, changed bigint NOT NULL,"
    "  report jsonb NOT NULL);"
    "CREATE TABLE keywords_dropped ("
    "  folder_id bigint NOT NULL REFERENCES folders ON DELETE CASCADE,"
    "  src_uid bigint NOT NULL, dst_uid bigint NOT NULL DEFAULT 0,"
    "  keywords text NOT NULL, error text NOT NULL,"
    "  at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (folder_id, src_uid));"
    "ALTER TABLE pass_accounts ADD COLUMN proof_claimed_at timestamptz;",
    /* 12: OAuth2 per server: the token endpoint where each account's
     * refresh token (its stored secret) buys access tokens; the client
     * secret stays in its file, only the path is stored */
    "ALTER TABLE servers ADD COLUMN oauth_token_url text;"
    "ALTER TABLE servers ADD COLUMN oauth_client_id text;"
    "ALTER TABLE servers ADD COLUMN oauth_client_secret_file text;"
    "ALTER TABLE servers ADD COLUMN oauth_scope text;"
    "ALTER TABLE servers ADD COLUMN oauth_ca_file text;",
    /* 13: the MX-aware final pass.  A migration may name the destination's
     * MX hosts (lower case, no trailing dot; NULL: no watching), how long
     * the MX must stay switched before the final pass (the settle), how
     * often to look and which resolver to ask; and its mail domains, each
     * with what the last lookup saw and where it stands: switched_at is
     * the start of the settle (every MX at the destination since then),
     * final_pass the final pass started for the domain's accounts (by the
     * watcher or by hand), done_at when that pass ended.  In PostgreSQL so
     * that a coordinator restart neither loses the settle nor starts the
     * pass twice. */
    "ALTER TABLE migrations ADD COLUMN mx_hosts text[];"
    "ALTER TABLE migrations ADD COLUMN mx_settle_s int NOT NULL DEFAULT 600;"
    "ALTER TABLE migrations ADD COLUMN mx_interval_s int NOT NULL DEFAULT 60;"
    "ALTER TABLE migrations ADD COLUMN mx_resolver text;"
    "CREATE TABLE mx_domains ("
    "  id bigserial PRIMARY KEY,"
    "  migration_id bigint NOT NULL REFERENCES migrations ON DELETE CASCADE,"
    "  domain text NOT NULL,"
    "  checked_at timestamptz, seen text NOT NULL DEFAULT '',"
    "  matched int NOT NULL DEFAULT 0, total int NOT NULL DEFAULT 0,"
    "  error text,"
    "  switched_at timestamptz,"
    "  final_pass int, final_by text CHECK (final_by IN ('watcher', 'hand')),"
    "  final_at timestamptz, done_at timestamptz, synced int NOT NULL DEFAULT 0,"
    "  accounts int NOT NULL DEFAULT 0,"
    "  UNIQUE (migration_id, domain));",
    /* 14: contacts and calendars (CardDAV, CalDAV) of a profile with a
     * "dav" URL: per account, each source collection with the destination
     * collection it goes to and the sync-token of its last complete
     * listing; per object, the source ETag copied and the destination's
     * href and ETag (an update goes with If-Match), or the destination's
     * refusal.  What a pass copied is counted with the pass. */
    "ALTER TABLE servers ADD COLUMN dav_url text;"
    "ALTER TABLE servers ADD COLUMN dav_ca_file text;"
    "CREATE TABLE dav_collections ("
    "  id bigserial PRIMARY KEY,"
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  kind text NOT NULL CHECK (kind IN ('addressbook', 'calendar')),"
    "  src_href text NOT NULL, dst_href text NOT NULL,"
    "  name text NOT NULL DEFAULT '', sync_token text, error text,"
    "  updated_at timestamptz NOT NULL DEFAULT now(),"
    "  UNIQUE (account_id, src_href));"
    "CREATE TABLE dav_objects ("
    "  collection_id bigint NOT NULL REFERENCES dav_collections ON DELETE CASCADE,"
    "  src_href text NOT NULL, src_etag text NOT NULL,"
    "  dst_href text NOT NULL, dst_etag text, error text,"
    "  at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (collection_id, src_href));"
    "ALTER TABLE pass_accounts ADD COLUMN dav_contacts bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE pass_accounts ADD COLUMN dav_events bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE pass_accounts ADD COLUMN dav_failed bigint NOT NULL DEFAULT 0;",
    /* 15: POP3 sources.  A source profile speaks IMAP or POP3; a POP3
     * maildrop has no UIDs, so each message's unique-id (UIDL, RFC 1939 7)
     * gets a pseudo UID of the account, in the order first seen, never
     * reused: the folders/uid_map/intent machinery then works on those.
     * first_seen stands in for a message without a Date header as its
     * destination INTERNALDATE.  pop3_seen: copies are flagged \Seen. */
    "ALTER TABLE servers ADD COLUMN protocol text NOT NULL DEFAULT 'imap'"
    "  CHECK (protocol IN ('imap', 'pop3'));"
    "ALTER TABLE servers ADD COLUMN pop3_seen boolean NOT NULL DEFAULT false;"
    "CREATE TABLE pop3_uids ("
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  uidl text NOT NULL, uid bigint NOT NULL CHECK (uid BETWEEN 1 AND 4294967294),"
    "  first_seen timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (account_id, uidl), UNIQUE (account_id, uid));",
    /* 16: a large folder's first copy split in two streams (worker/lanes.c):
     * the lane copies source UIDs lane_lo..lane_hi on connections of its
     * own, with its own high water and batch intent, while the folder's
     * own cursor copies what is below lane_lo.  lane_lo 0: no lane.  When
     * both are through, one commit moves high_water to lane_hi and clears
     * the lane; until then a resumed copy continues both where they
     * stopped. */
    "ALTER TABLE folders ADD COLUMN lane_lo bigint NOT NULL DEFAULT 0,"
    "  ADD COLUMN lane_hi bigint NOT NULL DEFAULT 0,"
    "  ADD COLUMN lane_high_water bigint NOT NULL DEFAULT 0,"
    "  ADD COLUMN lane_intent_dst_uidnext bigint NOT NULL DEFAULT 0,"
    "  ADD COLUMN lane_intent_uids bigint[];",
};

size_t schema_count(void)
{
	return sizeof(migrations) / sizeof(migrations[0]);
}

const char *schema_sql(size_t i)
{
	return i < schema_count() ? migrations[i] : NULL;
}

/* Advisory lock key taken while applying schema migrations ("mshift"). */
#define SCHEMA_LOCK_KEY 0x6d7368696674LL

int store_schema_apply(struct store *st, char *err, size_t errlen)
{
	struct store_params lock;
	PGresult *res = NULL;
	int ret = -1, applied;

	store_params_init(&lock);
	store_param_i64(&lock, SCHEMA_LOCK_KEY);
	if (store_exec(st, "SELECT pg_advisory_lock($1::bigint)", 1, lock.values, NULL, err,
	               errlen) < 0)
		return -1;
	if (store_exec_simple(
	        st,
	        "CREATE TABLE IF NOT EXISTS schema_migrations ("
	        " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
	        err, errlen) < 0)
		goto out;
	for (size_t i = 0; i < schema_count(); i++) {
		struct store_params version;
		const char *const *params = version.values;

		store_params_init(&version);
		store_param_u64(&version, i + 1);
		if (store_exec(st, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params,
		               &res, err, errlen) < 0)
			goto out;
		applied = PQntuples(res) > 0;
		PQclear(res);
		res = NULL;
		if (applied)
			continue;
		if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
			goto out;
		if (store_exec_simple(st, schema_sql(i), err, errlen) < 0 ||
		    store_exec(st, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, params,
		               NULL, err, errlen) < 0 ||
		    store_exec_simple(st, "COMMIT", err, errlen) < 0) {
			store_rollback(st);
			goto out;
		}
		log_info("schema migration %zu applied", i + 1);
	}
	ret = 0;
out:
	PQclear(
	    store_pq_exec(st, "SELECT pg_advisory_unlock($1::bigint)", 1, lock.values, NULL, NULL));
	return ret;
}

int store_schema_current(struct store *st, bool *current_r, char *err, size_t errlen)
{
	PGresult *res = NULL;

	if (store_exec(st, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &res,
	               err, errlen) < 0)
		return -1;
	*current_r = strtoull(PQgetvalue(res, 0, 0), NULL, 10) >= schema_count();
	PQclear(res);
	return 0;
}

int store_key_check_get(struct store *st, unsigned char **check_r, size_t *len_r, char **key_id_r,
                        char *err, size_t errlen)
{
	PGresult *res = NULL;
	int ret = STORE_KEY_CHECK_NONE;

	*check_r = NULL;
	*key_id_r = NULL;
	*len_r = 0;
	if (store_exec(st, "SELECT key_id, encode(check_value, 'hex') FROM key_check", 0, NULL,
	               &res, err, errlen) < 0)
		return -1;
	if (PQntuples(res) > 0) {
		*key_id_r = strdup(PQgetvalue(res, 0, 0));
		if (*key_id_r == NULL ||
		    store_hex_decode(PQgetvalue(res, 0, 1), check_r, len_r) < 0) {
			free(*key_id_r);
			*key_id_r = NULL;
			snprintf(err, errlen, "key check: out of memory or bad value");
			ret = -1;
		} else {
			ret = STORE_KEY_CHECK_FOUND;
		}
	}
	PQclear(res);
	return ret;
}

int store_key_check_put(struct store *st, const unsigned char *check, size_t len,
                        const char *key_id, char *err, size_t errlen)
{
	const char *values[2] = {key_id, (const char *)check};
	int lengths[2] = {0, (int)len}, formats[2] = {0, 1};
	PGresult *res;
	int ok;

	st->error[0] = '\0';
	res = store_pq_exec(st,
	                    "INSERT INTO key_check (key_id, check_value) VALUES ($1, $2)"
	                    " ON CONFLICT (only_row) DO NOTHING",
	                    2, values, lengths, formats);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		store_fail(st, err, errlen, "postgresql", res);
	PQclear(res);
	return ok ? 0 : -1;
}
