// SPDX-License-Identifier: MIT
/*
 * api_report.c: the conversation report (POST /reports/conversations,
 * drift-api.md V5): its request body, the call, and the shape of its
 * answer, read into rows (see api.h, Reports). The command line, the CSV
 * and the minute limit are driftctl's.
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define REPORT_PATH "/reports/conversations"

/* The longest "%.17g" of a double, and its NUL. */
#define NUM_MAX 32

struct api_report {
	cJSON *req;		/* {"filters": [...], "metrics": [...]} */
	cJSON *filters;		/* in req */
	cJSON *metrics;		/* in req: names, in the answer's order */
	cJSON *answer;		/* an object, after api_report_parse() */
};

struct api_report *api_report_new(void)
{
	struct api_report *rp = calloc(1, sizeof(*rp));

	if (!rp)
		return NULL;
	rp->req = cJSON_CreateObject();
	rp->filters = rp->req ? cJSON_AddArrayToObject(rp->req, "filters")
			      : NULL;
	rp->metrics = rp->req ? cJSON_AddArrayToObject(rp->req, "metrics")
			      : NULL;
	if (!rp->filters || !rp->metrics) {
		api_report_free(rp);
		errno = ENOMEM;
		return NULL;
	}
	return rp;
}

void api_report_free(struct api_report *rp)
{
	if (!rp)
		return;
	cJSON_Delete(rp->req);
	cJSON_Delete(rp->answer);
	free(rp);
}

/*
 * A filter value: an integer becomes a JSON number (its exact digits, as
 * ids may pass 2^53), anything else a string.
 */
static cJSON *filter_value(const char *w)
{
	size_t n = strlen(w);

	if (n && n <= 18 && strspn(w, "0123456789") == n &&
	    (w[0] != '0' || n == 1))
		return cJSON_CreateRaw(w);
	return cJSON_CreateString(w);
}

int api_report_add_filter(struct api_report *rp, const char *property,
			  const char *operation, char *const *values,
			  size_t nvalues)
{
	cJSON *f, *vals = NULL;

	f = cJSON_CreateObject();
	if (!f || !cJSON_AddStringToObject(f, "property", property) ||
	    !cJSON_AddStringToObject(f, "operation", operation))
		goto fail;
	if (nvalues) {
		vals = cJSON_AddArrayToObject(f, "values");
		for (size_t i = 0; vals && i < nvalues; i++) {
			cJSON *v = filter_value(values[i]);

			if (!cJSON_AddItemToArray(vals, v))
				vals = NULL;
		}
		if (!vals)
			goto fail;
	}
	cJSON_AddItemToArray(rp->filters, f);
	return 0;
fail:
	cJSON_Delete(f);
	return -ENOMEM;
}

int api_report_add_metric(struct api_report *rp, const char *name)
{
	return cJSON_AddItemToArray(rp->metrics, cJSON_CreateString(name))
		       ? 0
		       : -ENOMEM;
}

size_t api_report_metric_count(const struct api_report *rp)
{
	return (size_t)cJSON_GetArraySize(rp->metrics);
}

const char *api_report_metric_name(const struct api_report *rp, size_t i)
{
	const cJSON *m = cJSON_GetArrayItem(rp->metrics, (int)i);

	return m ? m->valuestring : NULL;
}

char *api_report_body(const struct api_report *rp)
{
	char *body = cJSON_PrintUnformatted(rp->req);

	if (!body)
		errno = ENOMEM;
	return body;
}

int api_report_post(struct http *h, const char *body,
		    struct http_response *resp)
{
	/* Reports change nothing: a 429 is waited out and retried. */
	return http_call(h, "POST", REPORT_PATH, NULL, body, strlen(body), 0,
			 HTTP_IDEMPOTENT, resp);
}

int api_report_parse(struct api_report *rp, const char *body, size_t len)
{
	cJSON *answer = json_parse(body, len);

	if (!answer)
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	if (!cJSON_IsObject(answer)) {
		cJSON_Delete(answer);
		return -EIO;
	}
	cJSON_Delete(rp->answer);
	rp->answer = answer;
	return 0;
}

int api_report_render(const struct api_report *rp, struct buf *out)
{
	if (!rp->answer)
		return -EINVAL;
	return json_render(rp->answer, out);
}

/*
 * One metric value as text: numbers as they are (a big integer's exact
 * digits), true and false, a string as the API gave it; NULL for the rest.
 */
static void read_value(const cJSON *v, char *num, struct api_report_value *out)
{
	out->text = NULL;
	out->is_string = 0;
	if (cJSON_IsRaw(v)) {
		out->text = v->valuestring;
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d == (double)(long long)d && d < 9e15 && d > -9e15)
			snprintf(num, NUM_MAX, "%lld", (long long)d);
		else
			snprintf(num, NUM_MAX, "%.17g", d);
		out->text = num;
	} else if (cJSON_IsBool(v)) {
		out->text = cJSON_IsTrue(v) ? "true" : "false";
	} else if (cJSON_IsString(v)) {
		out->text = v->valuestring;
		out->is_string = 1;
	}
}

int api_report_rows(const struct api_report *rp, api_report_row_cb cb,
		    void *ctx)
{
	const cJSON *data, *row;
	size_t nm = api_report_metric_count(rp);
	struct api_report_value *vals = NULL;
	char *nums = NULL;
	int r = 0;

	if (!rp->answer)
		return -EINVAL;
	data = cJSON_GetObjectItemCaseSensitive(rp->answer, "data");
	if (!cJSON_IsArray(data))
		return -EIO;
	vals = calloc(nm ? nm : 1, sizeof(*vals));
	nums = calloc(nm ? nm : 1, NUM_MAX);
	if (!vals || !nums) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(row, data)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(
			row, "conversationId");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(
			row, "metrics");
		struct api_report_row rw = { 0 };

		if (json_i64(id, &rw.conversation_id)) {
			r = -EIO;
			break;
		}
		for (size_t i = 0; i < nm; i++) {
			const cJSON *v = cJSON_IsArray(m)
						 ? cJSON_GetArrayItem(m, (int)i)
						 : NULL;

			read_value(v, nums + i * NUM_MAX, &vals[i]);
		}
		rw.values = vals;
		r = cb(ctx, &rw);
		if (r)
			break;
	}
out:
	free(vals);
	free(nums);
	return r;
}
