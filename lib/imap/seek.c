/* Sequence-number probes for walking sparse UID ranges (see imap.h,
 * imap_fetch_uid_at).  A file of its own so that the UID walk's helper stays
 * apart from the fetch paths. */
#include "imap-private.h"

#include <stdio.h>

int imap_fetch_uid_at(struct imap_session *s, uint32_t seq, uint32_t *uid_r, char *err,
                      size_t errlen)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = mailimap_set_new_single(seq);
	clist *result = NULL;
	int r, ret = 1;

	*uid_r = 0;
	if (ft == NULL || set == NULL) {
		if (ft != NULL)
			mailimap_fetch_type_free(ft);
		if (set != NULL)
			mailimap_set_free(set);
		snprintf(err, errlen, "FETCH: out of memory");
		return -1;
	}
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	r = mailimap_fetch(s->imap, set, ft, &result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		ret = imap_command_failed(s, r, "FETCH (UID)", err, errlen);
		/* No such message (the folder shrank): not a failure here. */
		return ret == IMAP_ENO ? 1 : ret;
	}
	for (clistiter *it = clist_begin(result); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att *att = clist_content(it);
		if (att->att_number != seq)
			continue;
		for (clistiter *i = clist_begin(att->att_list); i != NULL; i = clist_next(i)) {
			struct mailimap_msg_att_item *item = clist_content(i);
			if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
			    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID &&
			    item->att_data.att_static->att_data.att_uid != 0) {
				*uid_r = item->att_data.att_static->att_data.att_uid;
				ret = 0;
			}
		}
	}
	mailimap_fetch_list_free(result);
	return ret;
}
