/* FETCH and STORE through libetpan's parser.  Bodies point into libetpan's
 * result, which the batch keeps alive until imap_batch_free. */
#include "imap-private.h"

#include "arg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest UID set text we build for one command. */
#define UIDSET_MAX 65536

void imap_batch_free(struct imap_batch *batch)
{
	if (batch->priv != NULL)
		mailimap_fetch_list_free(batch->priv);
	free(batch->msgs);
	memset(batch, 0, sizeof(*batch));
}

/* Appends flag to the list in buf, unless it does not fit whole: a cut
 * keyword would reach the destination as a flag the source never had. */
static void flag_append(char *buf, size_t buflen, const char *flag)
{
	size_t len = strlen(buf);

	if (len + (len > 0) + strlen(flag) >= buflen)
		return;
	snprintf(buf + len, buflen - len, "%s%s", len > 0 ? " " : "", flag);
}

void imap_flags_format(struct mailimap_msg_att_dynamic *dyn, char *buf, size_t buflen)
{
	buf[0] = '\0';
	if (dyn == NULL || dyn->att_list == NULL)
		return;
	for (clistiter *it = clist_begin(dyn->att_list); it != NULL; it = clist_next(it)) {
		struct mailimap_flag_fetch *ff = clist_content(it);
		struct mailimap_flag *f;

		/* \Recent is session state the server sets itself (RFC 3501 2.3.2). */
		if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || ff->fl_flag == NULL)
			continue;
		f = ff->fl_flag;
		switch (f->fl_type) {
		case MAILIMAP_FLAG_ANSWERED:
			flag_append(buf, buflen, "\\Answered");
			break;
		case MAILIMAP_FLAG_FLAGGED:
			flag_append(buf, buflen, "\\Flagged");
			break;
		case MAILIMAP_FLAG_DELETED:
			flag_append(buf, buflen, "\\Deleted");
			break;
		case MAILIMAP_FLAG_SEEN:
			flag_append(buf, buflen, "\\Seen");
			break;
		case MAILIMAP_FLAG_DRAFT:
			flag_append(buf, buflen, "\\Draft");
			break;
		case MAILIMAP_FLAG_KEYWORD:
			flag_append(buf, buflen, f->fl_data.fl_keyword);
			break;
		case MAILIMAP_FLAG_EXTENSION: {
			char ext[128];
			int n = snprintf(ext, sizeof(ext), "\\%s", f->fl_data.fl_extension);
			if (n > 0 && (size_t)n < sizeof(ext)) /* not cut either */
				flag_append(buf, buflen, ext);
			break;
		}
		}
	}
}

static void date_format(const struct mailimap_date_time *dt, char *buf, size_t buflen)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int zone = dt->dt_zone < 0 ? -dt->dt_zone : dt->dt_zone;
	int month = dt->dt_month >= 1 && dt->dt_month <= 12 ? dt->dt_month : 1;

	/* RFC 3501 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz"; libetpan keeps the
	 * zone as the signed decimal number hhmm. */
	snprintf(buf, buflen, "%02d-%s-%04d %02d:%02d:%02d %c%04d", dt->dt_day, months[month - 1],
	         dt->dt_year, dt->dt_hour, dt->dt_min, dt->dt_sec, dt->dt_zone < 0 ? '-' : '+',
	         zone % 10000);
}

/* Fills m from one FETCH response.  *have_uid_r: the response carried a UID;
 * *data_r: it carried more than FLAGS and MODSEQ (so it answers our command
 * and is not an unsolicited flag update, RFC 3501 7.4.2, RFC 7162 3.2.4). */
static void msg_from_att(struct mailimap_msg_att *att, struct imap_msg *m, bool *have_uid_r,
                         bool *data_r)
{
	memset(m, 0, sizeof(*m));
	*have_uid_r = false;
	*data_r = false;
	for (clistiter *it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
			imap_flags_format(item->att_data.att_dyn, m->flags, sizeof(m->flags));
			continue;
		}
		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_EXTENSION) {
			struct mailimap_extension_data *ext = item->att_data.att_extension_data;
			if (ext != NULL && ext->ext_extension == &mailimap_extension_condstore &&
			    ext->ext_type == MAILIMAP_CONDSTORE_TYPE_FETCH_DATA) {
				struct mailimap_condstore_fetch_mod_resp *r = ext->ext_data;
				m->modseq = r->cs_modseq_value;
			}
			continue;
		}
		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		struct mailimap_msg_att_static *st = item->att_data.att_static;
		switch (st->att_type) {
		case MAILIMAP_MSG_ATT_UID:
			m->uid = st->att_data.att_uid;
			*have_uid_r = true;
			break;
		case MAILIMAP_MSG_ATT_RFC822_SIZE:
			m->size = st->att_data.att_rfc822_size;
			*data_r = true;
			break;
		case MAILIMAP_MSG_ATT_INTERNALDATE:
			date_format(st->att_data.att_internal_date, m->internaldate,
			            sizeof(m->internaldate));
			*data_r = true;
			break;
		case MAILIMAP_MSG_ATT_BODY_SECTION:
			m->body = st->att_data.att_body_section->sec_body_part;
			m->body_len = st->att_data.att_body_section->sec_length;
			*data_r = true;
			break;
		default:
			*data_r = true;
			break;
		}
	}
}

/* The UIDs a UID FETCH asked for: the range first:last (last 0: "*"), or,
 * when uids is not NULL, exactly those (ascending). */
struct uid_filter {
	uint32_t first, last;
	const uint32_t *uids;
	size_t count;
};

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* 1: uid was asked for; 0: it was not but may be (a "n:*" range also returns
 * the last message when n is past it, RFC 3501 6.4.8); -1: it was not. */
static int uid_asked(const struct uid_filter *f, uint32_t uid)
{
	if (f->uids != NULL)
		return bsearch(&uid, f->uids, f->count, sizeof(uid), uid_cmp) != NULL ? 1 : -1;
	if (uid >= f->first && (f->last == 0 || uid <= f->last))
		return 1;
	return f->last == 0 ? 0 : -1;
}

/* Collects the result into a batch of the UIDs asked for.  A response with
 * UID 0, or with data for a UID not asked for, is the server's error
 * (IMAP_EPROTO): dropping it would lose or invent a message silently.
 * Responses without a UID, and flag updates for other UIDs, are unsolicited
 * (another session changed flags) and are left out. */
static int batch_from_result(struct imap_session *s, clist *result, const struct uid_filter *f,
                             struct imap_batch *batch_r, char *err, size_t errlen)
{
	struct imap_batch b;
	size_t n = 0;

	memset(&b, 0, sizeof(b));
	b.msgs = calloc(clist_count(result) + 1, sizeof(*b.msgs));
	if (b.msgs == NULL) {
		mailimap_fetch_list_free(result);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (clistiter *it = clist_begin(result); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att *att = clist_content(it);
		struct imap_msg *m = &b.msgs[n];
		bool have_uid, data;
		int asked;

		msg_from_att(att, m, &have_uid, &data);
		if (!have_uid)
			continue;
		if (m->uid == 0) {
			snprintf(err, errlen,
			         "UID FETCH: %s:%d returned UID 0 (or a negative one, which "
			         "libetpan reads as 0) for message %" PRIu32
			         " of the folder: UIDs start at 1 (RFC 3501 2.3.1.1)",
			         s->host, s->port, att->att_number);
			goto proto;
		}
		asked = uid_asked(f, m->uid);
		if (asked < 0 && data) {
			if (f->uids != NULL)
				snprintf(err, errlen,
				         "UID FETCH: %s:%d returned UID %" PRIu32
				         ", which was not asked for (%zu UIDs from %" PRIu32
				         " to %" PRIu32 ")",
				         s->host, s->port, m->uid, f->count, f->uids[0],
				         f->uids[f->count - 1]);
			else
				snprintf(err, errlen,
				         "UID FETCH: %s:%d returned UID %" PRIu32
				         ", outside the range asked for (%" PRIu32 ":%" PRIu32 ")",
				         s->host, s->port, m->uid, f->first, f->last);
			goto proto;
		}
		if (asked <= 0)
			continue;
		b.bytes += m->body_len;
		n++;
	}
	b.count = n;
	b.priv = result;
	*batch_r = b;
	return 0;
proto:
	free(b.msgs);
	mailimap_fetch_list_free(result);
	return IMAP_EPROTO;
}

static int uid_fetch(struct imap_session *s, struct mailimap_set *set,
                     struct mailimap_fetch_type *ft, uint64_t changedsince, clist **result_r,
                     char *err, size_t errlen)
{
	int r, ret;

	if (changedsince != 0)
		r = mailimap_uid_fetch_changedsince(s->imap, set, ft, changedsince, result_r);
	else
		r = mailimap_uid_fetch(s->imap, set, ft, result_r);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "UID FETCH", err, errlen);
	/* libetpan reports a NO that came with some data as success (partial
	 * results): a throttled one must not pass for messages that are gone. */
	ret = imap_command_throttled(s, "UID FETCH", err, errlen);
	if (ret < 0) {
		mailimap_fetch_list_free(*result_r);
		*result_r = NULL;
	}
	return ret;
}

static int fetch_sizes(struct imap_session *s, uint32_t first, uint32_t last, bool dates,
                       struct imap_batch *batch_r, char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	clist *result = NULL;
	int ret;

	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
	if (dates)
		mailimap_fetch_type_new_fetch_att_list_add(ft,
		                                           mailimap_fetch_att_new_internaldate());
	struct uid_filter f = {.first = first, .last = last};

	ret = uid_fetch(s, mailimap_set_new_interval(first, last), ft, 0, &result, err, errlen);
	if (ret < 0)
		return ret;
	return batch_from_result(s, result, &f, batch_r, err, errlen);
}

int imap_fetch_sizes(struct imap_session *s, uint32_t first, uint32_t last,
                     struct imap_batch *batch_r, char *err, size_t errlen)
{
	return fetch_sizes(s, first, last, false, batch_r, err, errlen);
}

int imap_fetch_sizes_dates(struct imap_session *s, uint32_t first, uint32_t last,
                           struct imap_batch *batch_r, char *err, size_t errlen)
{
	return fetch_sizes(s, first, last, true, batch_r, err, errlen);
}

int imap_fetch_flags(struct imap_session *s, uint32_t first, uint32_t last, uint64_t changedsince,
                     struct imap_batch *batch_r, char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	clist *result = NULL;
	int ret;

	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags());
	struct uid_filter f = {.first = first, .last = last};

	ret = uid_fetch(s, mailimap_set_new_interval(first, last), ft, changedsince, &result, err,
	                errlen);
	if (ret < 0)
		return ret;
	return batch_from_result(s, result, &f, batch_r, err, errlen);
}

static struct mailimap_set *set_from_uids(const uint32_t *uids, size_t count)
{
	struct mailimap_set *set = mailimap_set_new_empty();
	size_t i = 0;

	while (set != NULL && i < count) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		mailimap_set_add_interval(set, uids[i], uids[j]);
		i = j + 1;
	}
	return set;
}

int imap_fetch_bodies(struct imap_session *s, const uint32_t *uids, size_t count,
                      struct imap_batch *batch_r, char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	clist *result = NULL;
	int ret;

	if (count == 0) {
		mailimap_fetch_type_free(ft);
		memset(batch_r, 0, sizeof(*batch_r));
		return 0;
	}
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags());
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_internaldate());
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
	/* BODY.PEEK: reading must never set \Seen on the source (RFC 3501 6.4.5). */
	mailimap_fetch_type_new_fetch_att_list_add(
	    ft, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
	struct uid_filter f = {.uids = uids, .count = count};

	ret = uid_fetch(s, set_from_uids(uids, count), ft, 0, &result, err, errlen);
	if (ret < 0)
		return ret;
	return batch_from_result(s, result, &f, batch_r, err, errlen);
}

int imap_flags_check(struct imap_session *s, const char *flags, char *err, size_t errlen)
{
	for (const char *p = flags; *p != '\0';) {
		size_t len = strcspn(p, " ");
		if (len > 0 && !imap_arg_flag_ok(p, len)) {
			snprintf(err, errlen,
			         "UID STORE to %s:%d not sent: a flag is not a valid IMAP flag "
			         "(\"%.*s\")",
			         s->host, s->port, (int)(len < 64 ? len : 64), p);
			for (char *q = err; *q != '\0'; q++)
				if ((unsigned char)*q < 0x20)
					*q = '?';
			return IMAP_EARG;
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	return 0;
}

int imap_store_flags(struct imap_session *s, const uint32_t *uids, size_t count, const char *flags,
                     char *err, size_t errlen)
{
	struct mailimap_flag_list *list;
	struct mailimap_store_att_flags *att;
	struct mailimap_set *set;
	char *buf, *save = NULL, *word;
	int r;

	/* libetpan sends keywords as they are: each must be an atom. */
	r = imap_flags_check(s, flags, err, errlen);
	if (r < 0)
		return r;
	buf = strdup(flags);
	list = mailimap_flag_list_new_empty();
	if (buf == NULL || list == NULL) {
		free(buf);
		if (list != NULL)
			mailimap_flag_list_free(list);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (word = strtok_r(buf, " ", &save); word != NULL; word = strtok_r(NULL, " ", &save)) {
		struct mailimap_flag *f;
		if (strcasecmp(word, "\\Seen") == 0)
			f = mailimap_flag_new_seen();
		else if (strcasecmp(word, "\\Answered") == 0)
			f = mailimap_flag_new_answered();
		else if (strcasecmp(word, "\\Flagged") == 0)
			f = mailimap_flag_new_flagged();
		else if (strcasecmp(word, "\\Deleted") == 0)
			f = mailimap_flag_new_deleted();
		else if (strcasecmp(word, "\\Draft") == 0)
			f = mailimap_flag_new_draft();
		else if (word[0] == '\\')
			f = mailimap_flag_new_flag_extension(strdup(word + 1));
		else
			f = mailimap_flag_new_flag_keyword(strdup(word));
		mailimap_flag_list_add(list, f);
	}
	free(buf);
	att = mailimap_store_att_flags_new_set_flags_silent(list);
	set = set_from_uids(uids, count);
	r = mailimap_uid_store(s->imap, set, att);
	mailimap_set_free(set);
	mailimap_store_att_flags_free(att);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "UID STORE", err, errlen);
	return 0;
}

/* Writes all of buf to fd at offset. */
static int pwrite_all(int fd, const char *buf, size_t len, off_t offset)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
		offset += n;
	}
	return 0;
}

/* How many bytes more than its RFC822.SIZE a message may bring: sizes some
 * servers announce are estimates, but not by this much. */
static uint64_t size_margin(uint64_t announced)
{
	return announced / 100 > 65536 ? announced / 100 : 65536;
}

int imap_fetch_body_to_file(struct imap_session *s, uint32_t uid, int fd, size_t chunk,
                            struct imap_msg *msg_r, char *err, size_t errlen)
{
	struct uid_filter f = {.first = uid, .last = uid};
	struct imap_msg meta;
	uint64_t offset = 0, bound = UINT64_MAX;
	bool have_meta = false;
	int ret;

	memset(&meta, 0, sizeof(meta));
	if (chunk == 0 || chunk > UINT32_MAX) {
		snprintf(err, errlen, "spool: bad chunk size %zu", chunk);
		return -1;
	}
	if (ftruncate(fd, 0) < 0) {
		snprintf(err, errlen, "spool file: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
		struct imap_batch part;
		clist *result = NULL;
		size_t got;

		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
		if (!have_meta) {
			mailimap_fetch_type_new_fetch_att_list_add(ft,
			                                           mailimap_fetch_att_new_flags());
			mailimap_fetch_type_new_fetch_att_list_add(
			    ft, mailimap_fetch_att_new_internaldate());
			mailimap_fetch_type_new_fetch_att_list_add(
			    ft, mailimap_fetch_att_new_rfc822_size());
		}
		mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_body_peek_section_partial(
		            mailimap_section_new(NULL), (uint32_t)offset, (uint32_t)chunk));
		ret = uid_fetch(s, mailimap_set_new_single(uid), ft, 0, &result, err, errlen);
		if (ret < 0)
			return ret;
		ret = batch_from_result(s, result, &f, &part, err, errlen);
		if (ret < 0)
			return ret;
		if (part.count == 0) {
			imap_batch_free(&part);
			return 1;
		}
		if (!have_meta) {
			meta = part.msgs[0];
			have_meta = true;
			/* Each part is a literal of at most chunk bytes (and the
			 * transport holds every literal to max_literal); the whole
			 * is held to what the server announced, so messages larger
			 * than max_literal still travel, in parts. */
			bound = (uint64_t)meta.size + size_margin(meta.size);
		}
		got = part.msgs[0].body_len;
		/* Bounded before a byte is written: a server that ignores the
		 * partial range, or sends more than it announced, would else fill
		 * the disk (or loop for ever on a message that never ends). */
		if (got > chunk || offset + got > bound) {
			if (got > chunk)
				snprintf(err, errlen,
				         "UID FETCH %" PRIu32
				         ": %s:%d sent %zu bytes for a partial "
				         "fetch of %zu",
				         uid, s->host, s->port, got, chunk);
			else
				snprintf(
				    err, errlen,
				    "UID FETCH %" PRIu32 ": %s:%d announced RFC822.SIZE %" PRIu32
				    " but sent more (%" PRIu64 " bytes received), more than the "
				    "margin allows (%" PRIu64 ")",
				    uid, s->host, s->port, meta.size, offset + got, bound);
			/* The server cannot be trusted to frame what follows. */
			imap_session_break(s, IMAP_ELIMIT, "%s", err);
			imap_batch_free(&part);
			return IMAP_ELIMIT;
		}
		if (got > 0 && pwrite_all(fd, part.msgs[0].body, got, (off_t)offset) < 0) {
			snprintf(err, errlen, "spool file: %s", strerror(errno));
			imap_batch_free(&part);
			return -1;
		}
		offset += got;
		imap_batch_free(&part);
		/* A short or empty part is the end (RFC 3501 6.4.5): every round
		 * either ends or moves offset by a whole chunk towards bound. */
		if (got < chunk)
			break;
	}
	meta.body = NULL;
	meta.body_len = (size_t)offset;
	meta.spooled = true;
	meta.body_fd = fd;
	*msg_r = meta;
	return 0;
}
