// SPDX-License-Identifier: MIT
/*
 * http_error.c: what a failed request becomes. HTTP statuses map to -errno
 * here and nowhere else; the error message is built from the API's answer
 * or curl's words, with every secret the request carried redacted. Not the
 * logging of it, which is http_request()'s.
 */
#include <errno.h>
#include <string.h>

#include <curl/curl.h>

#include "http_int.h"
#include "json.h"
#include "secret.h"
#include "text.h"

int http_errno(long status)
{
	switch (status) {
	case 0:
		return -EIO;
	case 400:
	case 422:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
	case 410:
		return -ENOENT;
	case 409:
		return -EEXIST;
	case 413:
		return -EFBIG;
	case 429:
		return -EAGAIN;
	default:
		if (status >= 200 && status < 300)
			return 0;
		/* A redirect is not followed: the answer is not the API's. */
		if (status >= 500 || (status >= 300 && status < 400))
			return -EIO;
		return -EINVAL;
	}
}

int http_transient(long status)
{
	return status == 0 || status == 408 || status == 429 || status >= 500;
}

/*
 * Appends the API's own message from an error body, if it has one: the
 * JSON error's type and message, else the body as it is. Whole, so that
 * the token is redacted before anything is cut (http_set_message()).
 */
int http_error_message(const struct buf *body, struct buf *out)
{
	cJSON *v, *e;
	const char *msg = NULL, *type = NULL;
	int r = 0;

	if (!body->len)
		return 0;
	v = json_parse(body->data, body->len);
	if (!v)
		return buf_add(out, body->data, body->len);
	e = cJSON_GetObjectItemCaseSensitive(v, "error");
	if (cJSON_IsObject(e)) {
		msg = json_get_str(e, "message");
		type = json_get_str(e, "type");
	} else if (cJSON_IsString(e)) {
		msg = e->valuestring;
	} else {
		e = cJSON_GetObjectItemCaseSensitive(v, "errors");
		if (cJSON_IsArray(e) && cJSON_GetArraySize(e) > 0) {
			msg = json_get_str(cJSON_GetArrayItem(e, 0), "message");
			type = json_get_str(cJSON_GetArrayItem(e, 0), "type");
		} else {
			msg = json_get_str(v, "message");
		}
	}
	if (msg)
		r = buf_printf(out, "%s%s%s", type ? type : "",
			       type ? ": " : "", msg);
	cJSON_Delete(v);
	return r;
}

/*
 * Whether a curl error says the server's certificate was not accepted.
 * Retrying cannot help, and the user must be told plainly.
 */
int http_tls_refused(int rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return 1;
	default:
		return 0;
	}
}

/*
 * Replaces every copy of secret in the len bytes of s with "***" and
 * returns the new length (NUL bytes in s are no hiding place).
 */
static size_t redact(char *s, size_t len, const char *secret)
{
	size_t n = strlen(secret), at = 0;
	char *p;

	if (n < 4)
		return len;
	while ((p = memmem(s + at, len - at, secret, n))) {
		size_t i = (size_t)(p - s);

		memcpy(p, "***", 3);
		memmove(p + 3, p + n, len - i - n);
		len -= n - 3;
		at = i + 3;
	}
	s[len] = '\0';
	return len;
}

/*
 * Redacts secret from the len bytes of s as it is and as a form body or a
 * query carries it, percent-encoded (text_percent_encode(), as the api
 * sends it: an error page that echoes the request shows it so). Returns
 * the new length.
 */
static size_t redact_forms(char *s, size_t len, const char *secret)
{
	char *enc;

	len = redact(s, len, secret);
	enc = text_percent_encode(secret);
	if (enc && strcmp(enc, secret))
		len = redact(s, len, enc);
	secret_free(enc);
	return len;
}

static size_t redact_secrets(char *s, size_t len,
			     const struct http_secrets *sec)
{
	if (sec->token)
		len = redact(s, len, sec->token);
	if (sec->refused)
		len = redact(s, len, sec->refused);
	for (const char *const *e = sec->extra; e && *e; e++)
		len = redact_forms(s, len, *e);
	return len;
}

size_t http_redact(char *s, size_t len, const struct http_secrets *sec)
{
	return redact_secrets(s, len, sec);
}

char *http_path_for_log(const char *path, char *out, size_t size)
{
	const char *q = strchr(path, '?');
	size_t o = 0, n = q ? (size_t)(q - path) + 1 : strlen(path);

	/* The path up to its query, '?' included; the query a key at a time. */
	while (path[o] && o < n && o + 1 < size) {
		out[o] = path[o];
		o++;
	}
	for (const char *p = q ? q + 1 : ""; *p && o + 1 < size;) {
		size_t key = strcspn(p, "=&#"), val;

		if (key > size - 1 - o)
			key = size - 1 - o;
		memcpy(out + o, p, key);
		o += key;
		p += key;
		if (*p == '=' && o + 1 < size) {
			out[o++] = '=';
			p++;
			val = strcspn(p, "&#");
			p += val;
			for (const char *m = val ? "***" : "";
			     *m && o + 1 < size;)
				out[o++] = *m++;
		}
		/* A fragment is nobody's key: it goes whole. */
		if (*p == '#')
			p += strlen(p);
		if (*p == '&' && o + 1 < size) {
			out[o++] = '&';
			p++;
		}
	}
	out[o] = '\0';
	return out;
}

/*
 * Sets resp->message from the whole text of why (consumed): the secrets
 * are redacted from all of it, the sanitiser (text.h) makes it one line
 * with no escape sequence, and only then is it cut to fit, at a character
 * boundary. Cut first, a token straddling the cut would keep its head.
 * The redaction runs again after cleaning, since dropping a control byte
 * can join a token that one split ("tok\x01en").
 */
void http_set_message(struct http_response *resp, struct buf *why,
		      const struct http_secrets *sec)
{
	resp->message[0] = '\0';
	if (!why->data)
		return;
	why->len = redact_secrets(why->data, why->len, sec);
	why->len = text_clean(why->data, why->len + 1, why->data, why->len, 0);
	why->len = redact_secrets(why->data, why->len, sec);
	text_clean(resp->message, sizeof(resp->message), why->data, why->len,
		   0);
	buf_release(why);
}
