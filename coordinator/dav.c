/* Contacts and calendars on the coordinator's side: the import-dav command
 * (the "export, then import" flow for sources that only export: a .vcf or
 * .ics file put into the account's destination address book or calendar)
 * and the status lines of what the workers copied over CardDAV/CalDAV. */
#include "commands-private.h"
#include "report.h"

#include "dav.h"
#include "log.h"
#include "store-dav.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest export file imported (read whole). */
#define IMPORT_MAX_BYTES (256u << 20)

static int read_file(const char *path, char **data_r, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		fprintf(stderr, "import-dav: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len + 65536 + 1 > cap) {
			cap = cap > 0 ? cap * 2 : 131072;
			char *grown = realloc(data, cap);
			if (grown == NULL)
				goto fail;
			data = grown;
		}
		size_t n = fread(data + len, 1, cap - len - 1, f);
		len += n;
		if (len > IMPORT_MAX_BYTES) {
			fprintf(stderr, "import-dav: %s: larger than %u bytes\n", path,
			        IMPORT_MAX_BYTES);
			free(data);
			fclose(f);
			return -1;
		}
		if (n == 0)
			break;
	}
	if (ferror(f))
		goto fail;
	fclose(f);
	data[len] = '\0';
	*data_r = data;
	*len_r = len;
	return 0;
fail:
	fprintf(stderr, "import-dav: %s: cannot read it\n", path);
	free(data);
	fclose(f);
	return -1;
}

/* The destination collection of kind an import goes to: the one named
 * "contacts" / "calendar" (the usual default), else the first the server
 * lists, else "contacts" / "calendar" created.  *href_r (caller frees). */
static int default_collection(struct dav_client *c, enum dav_kind kind, char **href_r)
{
	const char *want = kind == DAV_CALENDAR ? "calendar" : "contacts";
	char *homes[2] = {NULL, NULL}, why[512] = "", name[256];
	struct dav_collection *cols = NULL;
	size_t n = 0;
	int ret = -1;

	*href_r = NULL;
	if (dav_homes(c, &homes[DAV_ADDRESSBOOK], &homes[DAV_CALENDAR], why, sizeof(why)) < 0)
		goto fail;
	const char *home = homes[kind];
	if (home == NULL) {
		snprintf(why, sizeof(why), "the destination has no %s home", dav_kind_name(kind));
		goto fail;
	}
	if (dav_home_collections(c, home, &cols, &n, why, sizeof(why)) < 0)
		goto fail;
	for (int pass = 0; pass < 2 && *href_r == NULL; pass++)
		for (size_t i = 0; i < n && *href_r == NULL; i++)
			if (cols[i].kind == kind &&
			    (pass == 1 || (dav_href_name(cols[i].href, name, sizeof(name)) == 0 &&
			                   strcmp(name, want) == 0)))
				*href_r = strdup(cols[i].href);
	if (*href_r == NULL) {
		struct dav_collection col = {
		    .kind = kind,
		    .displayname = kind == DAV_CALENDAR ? "Calendar" : "Contacts",
		    .components = kind == DAV_CALENDAR ? "VEVENT VTODO" : NULL,
		};
		long status;
		if (asprintf(href_r, "%s%s%s/", home, home[strlen(home) - 1] == '/' ? "" : "/",
		             want) < 0) {
			*href_r = NULL;
			snprintf(why, sizeof(why), "out of memory");
			goto fail;
		}
		if (dav_create(c, *href_r, &col, &status, why, sizeof(why)) < 0)
			goto fail;
	}
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "import-dav: destination: %s\n", why);
	free(*href_r);
	*href_r = NULL;
out:
	dav_collections_free(&cols, n);
	free(homes[0]);
	free(homes[1]);
	return ret;
}

int cmd_import_dav(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	struct store_account acct = {0};
	struct secret_key *key = NULL;
	struct dav_client *client = NULL;
	struct dav_split_object *objs = NULL;
	size_t nobjs = 0, len = 0, added = 0, there = 0, refused = 0;
	char *data = NULL, *secret = NULL, *coll = NULL;
	char error[STORE_ERRLEN] = "", err[512] = "";
	enum dav_kind kind;
	int64_t mid, id;
	int ret = 1;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (command_account_arg(st, mid, argv[2], &id) < 0)
		return 1;
	if (store_account_get(st, id, &acct, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (acct.dst.dav_url == NULL) {
		fprintf(stderr,
		        "import-dav: the destination profile of account %" PRId64
		        " has no \"dav\" server\n",
		        id);
		goto out;
	}
	if (read_file(argv[3], &data, &len) < 0)
		goto out;
	if (dav_split(data, len, &kind, &objs, &nobjs, err, sizeof(err)) < 0) {
		fprintf(stderr, "import-dav: %s: %s\n", argv[3], err);
		goto out;
	}
	if (account_key_open(st, c->o->key_file, false, &key, err, sizeof(err)) < 0 ||
	    account_secret_open(key, ACCOUNT_DST, acct.dst_login, acct.dst_secret,
	                        acct.dst_secret_len, &secret, err, sizeof(err)) < 0) {
		fprintf(stderr, "import-dav: %s\n", err);
		goto out;
	}
	struct dav_endpoint ep = {
	    .url = acct.dst.dav_url,
	    .ca_file = acct.dst.dav_ca_file,
	    .user = acct.dst_login,
	    .password = secret,
	};
	if (dav_client_create(&ep, &client, err, sizeof(err)) < 0) {
		fprintf(stderr, "import-dav: %s\n", err);
		goto out;
	}
	if (default_collection(client, kind, &coll) < 0)
		goto out;
	/* Each object under its UID: the same file imported again finds every
	 * name taken (If-None-Match: *) and adds nothing. */
	for (size_t i = 0; i < nobjs; i++) {
		char *href = NULL, *etag = NULL;
		long status = 0;

		if (asprintf(&href, "%s%s", coll, objs[i].name) < 0) {
			fprintf(stderr, "import-dav: out of memory\n");
			goto out;
		}
		int r = dav_put(client, href, objs[i].data, objs[i].len,
		                kind == DAV_CALENDAR ? "text/calendar; charset=utf-8"
		                                     : "text/vcard; charset=utf-8",
		                NULL, &etag, &status, err, sizeof(err));
		free(href);
		free(etag);
		if (r == 0) {
			added++;
		} else if (r == DAV_ESTATUS && status == 412) {
			there++;
		} else if (r == DAV_ESTATUS) {
			refused++;
			fprintf(stderr, "import-dav: %s refused: %s\n",
			        objs[i].uid != NULL ? objs[i].uid : objs[i].name, err);
		} else {
			fprintf(stderr, "import-dav: destination: %s\n", err);
			goto out;
		}
	}
	printf("%zu %s from %s into %s: %zu added, %zu already there, %zu refused\n", nobjs,
	       kind == DAV_CALENDAR ? "calendar objects" : "vCards", argv[3], coll, added, there,
	       refused);
	log_info("account %" PRId64 " (%s): import-dav %s: %zu added, %zu already there, %zu"
	         " refused",
	         id, acct.src_login, argv[3], added, there, refused);
	ret = refused > 0 ? 1 : 0;
out:
	dav_client_destroy(&client);
	if (secret != NULL)
		secret_free(&secret);
	secret_key_destroy(&key);
	dav_split_free(&objs, nobjs);
	free(data);
	free(coll);
	store_account_clear(&acct);
	return ret;
}

static void print_dav(const struct store_dav_status *r, void *context)
{
	(void)context;
	printf("account %-4" PRId64 " contacts and calendars: %" PRId64 " collections, %" PRId64
	       " contacts, %" PRId64 " events on the destination, %" PRId64
	       " refused; this pass: %" PRId64 " contacts, %" PRId64 " events copied, %" PRId64
	       " refused",
	       r->account_id, r->collections, r->contacts, r->events, r->failed, r->pass_contacts,
	       r->pass_events, r->pass_failed);
	if (r->first_error[0] != '\0') {
		fputs("  first error: ", stdout);
		for (const char *s = r->first_error; *s != '\0'; s++)
			putchar((unsigned char)*s < 0x20 ? '?' : *s);
	}
	putchar('\n');
}

int report_dav(struct store *st, int64_t migration_id, int64_t account_id, char *err, size_t errlen)
{
	if (store_dav_status(st, migration_id, account_id, print_dav, NULL, err, errlen) < 0)
		return -1;
	return 0;
}
