/* Folder commands: LIST (with special-use attributes), CREATE, STATUS and
 * SELECT/EXAMINE. */
#include "imap-private.h"

#include "arg.h"
#include "log.h"
#include "throttle.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static unsigned int special_use_flag(const char *attr)
{
	static const struct {
		const char *name;
		unsigned int flag;
	} map[] = {
	    {"Sent", IMAP_FOLDER_SENT},
	    {"Drafts", IMAP_FOLDER_DRAFTS},
	    {"Trash", IMAP_FOLDER_TRASH},
	    {"Junk", IMAP_FOLDER_JUNK},
	    {"Archive", IMAP_FOLDER_ARCHIVE},
	    {"All", IMAP_FOLDER_ALL},
	    {"Flagged", IMAP_FOLDER_FLAGGED},
	    {"Noselect", IMAP_FOLDER_NOSELECT},
	    {"NonExistent", IMAP_FOLDER_NOSELECT},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(attr, map[i].name) == 0)
			return map[i].flag;
	return 0;
}

void imap_folders_free(struct imap_folder **folders, size_t count)
{
	if (*folders == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*folders)[i].name);
	free(*folders);
	*folders = NULL;
}

int imap_folders_list(struct imap_session *s, const char *prefix, struct imap_folder **folders_r,
                      size_t *count_r, char *err, size_t errlen)
{
	clist *list = NULL;
	struct imap_folder *folders = NULL;
	struct imap_buf pattern;
	size_t n = 0;
	clistiter *it;
	int r;

	imap_buf_init(&pattern, IMAP_ARG_MAX);
	if (imap_buf_printf(&pattern, "%s*", prefix != NULL ? prefix : "") < 0) {
		imap_buf_free(&pattern, false);
		snprintf(err, errlen, "LIST to %s:%d not sent: the folder prefix is too long",
		         s->host, s->port);
		return IMAP_EARG;
	}
	r = imap_session_arg_check(s, "LIST", "folder prefix", false, pattern.data, err, errlen);
	if (r == 0)
		r = mailimap_list(s->imap, "", pattern.data, &list);
	imap_buf_free(&pattern, false);
	if (r == IMAP_EARG)
		return r;
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "LIST", err, errlen);
	folders = calloc(clist_count(list) + 1, sizeof(*folders));
	if (folders == NULL) {
		mailimap_list_result_free(list);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (it = clist_begin(list); it != NULL; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		struct imap_folder *f = &folders[n];

		f->name = strdup(mb->mb_name);
		if (f->name == NULL)
			continue;
		f->delimiter = mb->mb_delimiter;
		if (mb->mb_flag != NULL) {
			if (mb->mb_flag->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
			    mb->mb_flag->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
				f->flags |= IMAP_FOLDER_NOSELECT;
			for (clistiter *o = clist_begin(mb->mb_flag->mbf_oflags); o != NULL;
			     o = clist_next(o)) {
				struct mailimap_mbx_list_oflag *of = clist_content(o);
				if (of->of_type == MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT)
					f->flags |= special_use_flag(of->of_flag_ext);
			}
		}
		n++;
	}
	mailimap_list_result_free(list);
	*folders_r = folders;
	*count_r = n;
	return 0;
}

int imap_folder_create(struct imap_session *s, const char *name, char *err, size_t errlen)
{
	int r, ret;

	ret = imap_session_arg_check(s, "CREATE", "folder name", false, name, err, errlen);
	if (ret < 0)
		return ret;
	r = mailimap_create(s->imap, name);
	if (r != MAILIMAP_NO_ERROR) {
		const char *text = s->imap->imap_response;

		ret = imap_command_failed(s, r, "CREATE", err, errlen);
		/* RFC 5530 ALREADYEXISTS, or Dovecot's wording without the code. */
		if (ret != IMAP_ENO || text == NULL || strcasestr(text, "exists") == NULL)
			return ret;
	}
	r = mailimap_subscribe(s->imap, name);
	if (r != MAILIMAP_NO_ERROR) {
		/* Subscribing is best effort; a throttled one is retried with the
		 * CREATE (which accepts an existing folder). */
		ret = imap_command_failed(s, r, "SUBSCRIBE", err, errlen);
		if (ret == IMAP_ENET || ret == IMAP_ETHROTTLED)
			return ret;
	}
	return 0;
}

/* What the copy relies on (RFC 3501 2.3.1.1): a UIDVALIDITY that is not 0
 * and a UIDNEXT.  A server without them cannot be resumed from a checkpoint. */
static int status_valid(struct imap_session *s, const char *cmd, const char *name,
                        const struct imap_status *st, bool have_validity, bool have_next, char *err,
                        size_t errlen)
{
	char shown[200];
	size_t n = 0;

	if (have_validity && have_next && st->uidvalidity != 0)
		return 0;
	for (const char *p = name; *p != '\0' && n + 1 < sizeof(shown); p++)
		shown[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	shown[n] = '\0';
	snprintf(err, errlen, "%s \"%s\": %s:%d %s", cmd, shown, s->host, s->port,
	         !have_validity ? "answered without UIDVALIDITY"
	         : !have_next   ? "answered without UIDNEXT"
	                        : "answered UIDVALIDITY 0, which RFC 3501 does not allow");
	return IMAP_EPROTO;
}

int imap_folder_status(struct imap_session *s, const char *name, struct imap_status *st_r,
                       char *err, size_t errlen)
{
	struct mailimap_status_att_list *atts = mailimap_status_att_list_new_empty();
	struct mailimap_mailbox_data_status *status = NULL;
	bool condstore = imap_session_has_cap(s, "CONDSTORE");
	bool have_validity = false, have_next = false;
	int r;

	r = imap_session_arg_check(s, "STATUS", "folder name", false, name, err, errlen);
	if (r < 0) {
		mailimap_status_att_list_free(atts);
		return r;
	}
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDVALIDITY);
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDNEXT);
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_MESSAGES);
	if (condstore)
		mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_HIGHESTMODSEQ);
	r = mailimap_status(s->imap, name, atts, &status);
	mailimap_status_att_list_free(atts);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "STATUS", err, errlen);
	if (status == NULL) {
		snprintf(err, errlen, "STATUS: %s:%d answered OK without the STATUS data", s->host,
		         s->port);
		return IMAP_EPROTO;
	}
	memset(st_r, 0, sizeof(*st_r));
	for (clistiter *it = clist_begin(status->st_info_list); it != NULL; it = clist_next(it)) {
		struct mailimap_status_info *info = clist_content(it);
		switch (info->st_att) {
		case MAILIMAP_STATUS_ATT_UIDVALIDITY:
			st_r->uidvalidity = info->st_value;
			have_validity = true;
			break;
		case MAILIMAP_STATUS_ATT_UIDNEXT:
			st_r->uidnext = info->st_value;
			have_next = true;
			break;
		case MAILIMAP_STATUS_ATT_MESSAGES:
			st_r->messages = info->st_value;
			break;
		default:
			/* libetpan reports HIGHESTMODSEQ (RFC 7162 3.1.2) as
			 * condstore extension data, whatever st_att says. */
			if (info->st_ext_data != NULL &&
			    info->st_ext_data->ext_extension == &mailimap_extension_condstore &&
			    info->st_ext_data->ext_type == MAILIMAP_CONDSTORE_TYPE_STATUS_INFO) {
				struct mailimap_condstore_status_info *cs =
				    info->st_ext_data->ext_data;
				st_r->highestmodseq = cs->cs_highestmodseq_value;
			}
			break;
		}
	}
	mailimap_mailbox_data_status_free(status);
	return status_valid(s, "STATUS", name, st_r, have_validity, have_next, err, errlen);
}

int imap_folder_open(struct imap_session *s, const char *name, bool read_only,
                     struct imap_status *st_r, char *err, size_t errlen)
{
	const char *cmd = read_only ? "EXAMINE" : "SELECT";
	struct mailimap_selection_info *sel;
	uint64_t modseq = 0;
	int r;

	s->selected[0] = '\0';
	r = imap_session_arg_check(s, cmd, "folder name", false, name, err, errlen);
	if (r < 0)
		return r;
	if (imap_session_has_cap(s, "CONDSTORE"))
		r = read_only ? mailimap_examine_condstore(s->imap, name, &modseq)
		              : mailimap_select_condstore(s->imap, name, &modseq);
	else
		r = read_only ? mailimap_examine(s->imap, name) : mailimap_select(s->imap, name);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, cmd, err, errlen);
	memset(st_r, 0, sizeof(*st_r));
	sel = s->imap->imap_selection_info;
	if (sel == NULL) {
		snprintf(err, errlen, "%s: %s:%d answered OK without the folder's data", cmd,
		         s->host, s->port);
		return IMAP_EPROTO;
	}
	st_r->uidvalidity = sel->sel_uidvalidity;
	st_r->uidnext = sel->sel_uidnext;
	st_r->messages = sel->sel_exists;
	st_r->highestmodseq = modseq;
	/* libetpan leaves 0 for a response code that did not come. */
	r = status_valid(s, cmd, name, st_r, st_r->uidvalidity != 0, st_r->uidnext != 0, err,
	                 errlen);
	if (r < 0)
		return r;
	if (!read_only)
		snprintf(s->selected, sizeof(s->selected), "%s", name);
	return 0;
}

const char *imap_session_selected(const struct imap_session *s)
{
	return s->selected[0] != '\0' ? s->selected : NULL;
}

bool imap_session_keyword_permitted(const struct imap_session *s, const char *keyword)
{
	const struct mailimap_selection_info *sel = s->imap->imap_selection_info;
	clistiter *it;

	/* No PERMANENTFLAGS (RFC 3501 7.1): the server said nothing against it. */
	if (s->selected[0] == '\0' || sel == NULL || sel->sel_perm_flags == NULL)
		return true;
	for (it = clist_begin(sel->sel_perm_flags); it != NULL; it = clist_next(it)) {
		const struct mailimap_flag_perm *p = clist_content(it);
		if (p->fl_type == MAILIMAP_FLAG_PERM_ALL)
			return true; /* "\*": new keywords may be created */
		if (p->fl_flag != NULL && p->fl_flag->fl_type == MAILIMAP_FLAG_KEYWORD &&
		    p->fl_flag->fl_data.fl_keyword != NULL &&
		    strcasecmp(p->fl_flag->fl_data.fl_keyword, keyword) == 0)
			return true;
	}
	return false;
}

int imap_folder_expunge(struct imap_session *s, char *err, size_t errlen)
{
	int r = mailimap_expunge(s->imap);

	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "EXPUNGE", err, errlen);
	return 0;
}
