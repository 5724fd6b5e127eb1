/* Multistatus answers (RFC 4918 13) and small request bodies, with libxml2:
 * no entity substitution, no network access while parsing. */
#include "dav-private.h"

#include <libxml/parser.h>
#include <libxml/xmlsave.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_element(xmlNodePtr n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL &&
	       xmlStrcmp(n->ns->href, (const xmlChar *)ns) == 0 &&
	       xmlStrcmp(n->name, (const xmlChar *)name) == 0;
}

xmlNodePtr dav_xml_child(xmlNodePtr node, const char *ns, const char *name)
{
	if (node == NULL)
		return NULL;
	for (xmlNodePtr n = node->children; n != NULL; n = n->next)
		if (is_element(n, ns, name))
			return n;
	return NULL;
}

char *dav_xml_text(xmlNodePtr node)
{
	xmlChar *t;
	char *out = NULL;
	size_t a, b;

	if (node == NULL || (t = xmlNodeGetContent(node)) == NULL)
		return NULL;
	const char *s = (const char *)t;
	for (a = 0; s[a] == ' ' || s[a] == '\t' || s[a] == '\r' || s[a] == '\n'; a++)
		;
	for (b = strlen(s);
	     b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r' || s[b - 1] == '\n');
	     b--)
		;
	if (b > a)
		out = strndup(s + a, b - a);
	xmlFree(t);
	return out;
}

char *dav_xml_href_of(xmlNodePtr prop, const char *ns, const char *name)
{
	return dav_xml_text(dav_xml_child(dav_xml_child(prop, ns, name), NS_DAV, "href"));
}

/* "HTTP/1.1 404 Not Found" -> 404; 0 if not a status line. */
static int status_code(xmlNodePtr status)
{
	char *s = dav_xml_text(status);
	int code = 0;

	if (s != NULL) {
		const char *sp = strchr(s, ' ');
		if (sp != NULL) {
			char *end;
			long v = strtol(sp + 1, &end, 10);
			if (end != sp + 1 && v >= 100 && v <= 599)
				code = (int)v;
		}
	}
	free(s);
	return code;
}

static xmlDocPtr parse(const char *body, size_t len)
{
	if (len > (size_t)DAV_MAX_BODY)
		return NULL;
	return xmlReadMemory(body, (int)len, "answer.xml", NULL,
	                     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

int dav_multistatus(const char *body, size_t len, dav_response_cb *cb, void *context,
                    char **sync_token_r, char *err, size_t errlen)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	int ret = 0;

	if (sync_token_r != NULL)
		*sync_token_r = NULL;
	if (!is_element(root, NS_DAV, "multistatus")) {
		snprintf(err, errlen, "the answer is not a DAV multistatus");
		xmlFreeDoc(doc);
		return DAV_EFAIL;
	}
	for (xmlNodePtr r = root->children; r != NULL && ret == 0; r = r->next) {
		if (!is_element(r, NS_DAV, "response"))
			continue;
		char *href = dav_xml_text(dav_xml_child(r, NS_DAV, "href"));
		xmlNodePtr ok = NULL;
		int status = status_code(dav_xml_child(r, NS_DAV, "status"));

		for (xmlNodePtr ps = r->children; ps != NULL; ps = ps->next)
			if (is_element(ps, NS_DAV, "propstat") &&
			    status_code(dav_xml_child(ps, NS_DAV, "status")) / 100 == 2)
				ok = dav_xml_child(ps, NS_DAV, "prop");
		if (href != NULL)
			ret = cb(href, status, ok, context);
		free(href);
	}
	if (ret == 0 && sync_token_r != NULL)
		*sync_token_r = dav_xml_text(dav_xml_child(root, NS_DAV, "sync-token"));
	xmlFreeDoc(doc);
	return ret;
}

char *dav_xml_escape(const char *text)
{
	xmlChar *e = xmlEncodeSpecialChars(NULL, (const xmlChar *)text);
	char *out = e != NULL ? strdup((const char *)e) : NULL;

	xmlFree(e);
	return out;
}

bool dav_xml_error_is(const char *body, size_t len, const char *ns, const char *name)
{
	xmlDocPtr doc = len > 0 ? parse(body, len) : NULL;
	xmlNodePtr root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	bool is = is_element(root, NS_DAV, "error") && dav_xml_child(root, ns, name) != NULL;

	xmlFreeDoc(doc);
	return is;
}
