/* SPDX-License-Identifier: Apache-2.0 */
/*
 * out.c - CLI output: the `teleport-unix: <what>: <why>` error line and a
 * small streaming JSON writer for --json.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctx.h"
#include "err.h"

int cli_open_ctx(struct cli *c, struct tu_ctx **ret)
{
	struct tu_err e;

	tu_err_clear(&e);
	unsigned f = c->insecure_perms ? TU_CTX_RELAXED_PERMS : 0;
	int r = c->profile_dir ? tu_ctx_new_profile(c->config_path, c->profile_dir, f, ret, &e)
			       : tu_ctx_new(c->config_path, f, ret, &e);
	if (r < 0)
		return cli_error(c, "config", &e);
	return 0;
}

static void print_error(struct cli *c, const char *line)
{
	fprintf(stderr, "teleport-unix: %s\n", line);
	if (c && c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_str(&j, "error", line);
		json_end(&j);
	}
}

int cli_error(struct cli *c, const char *what, const struct tu_err *e)
{
	char why[1024], line[1200];

	tu_err_format(e, why, sizeof(why));
	snprintf(line, sizeof(line), "%s: %s", what, why);
	print_error(c, line);
	return CLI_EXIT_ERROR;
}

int cli_errorf(struct cli *c, const char *fmt, ...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	print_error(c, line);
	return CLI_EXIT_ERROR;
}

void json_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void sep(struct json *j)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
}

static void open_level(struct json *j, char ch)
{
	fputc(ch, j->f);
	if (j->depth + 1 < (int) (sizeof(j->first) / sizeof(j->first[0])))
		j->depth++;
	j->first[j->depth] = true;
}

static void key(struct json *j, const char *k)
{
	sep(j);
	if (k) {
		json_escape(j->f, k);
		fputc(':', j->f);
	}
}

void json_begin(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
	open_level(j, '{');
}

void json_end(struct json *j)
{
	fputs("}\n", j->f);
	j->depth = 0;
}

void json_key_str(struct json *j, const char *k, const char *val)
{
	key(j, k);
	if (val)
		json_escape(j->f, val);
	else
		fputs("null", j->f);
}

void json_key_int(struct json *j, const char *k, long long val)
{
	key(j, k);
	fprintf(j->f, "%lld", val);
}

void json_key_bool(struct json *j, const char *k, bool val)
{
	key(j, k);
	fputs(val ? "true" : "false", j->f);
}

void json_key_obj_begin(struct json *j, const char *k)
{
	key(j, k);
	open_level(j, '{');
}

void json_obj_end(struct json *j)
{
	fputc('}', j->f);
	if (j->depth > 0)
		j->depth--;
}

void json_key_arr_begin(struct json *j, const char *k)
{
	key(j, k);
	open_level(j, '[');
}

void json_arr_str(struct json *j, const char *val)
{
	key(j, NULL);
	json_escape(j->f, val);
}

void json_arr_end(struct json *j)
{
	fputc(']', j->f);
	if (j->depth > 0)
		j->depth--;
}
