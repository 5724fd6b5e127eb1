/* Numbered schema migrations.  Each entry is applied once, in order, in its own
 * transaction, and recorded in schema_migrations.  Never edit an entry that has
 * shipped: append a new one. */
#include "schema.h"

#include <stddef.h>

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
};

size_t schema_count(void)
{
	return sizeof(migrations) / sizeof(migrations[0]);
}

const char *schema_sql(size_t i)
{
	return i < schema_count() ? migrations[i] : NULL;
}
