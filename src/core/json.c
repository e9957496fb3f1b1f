/* core/json.c — decimal-preserving parse and dump around jansson. */
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

static bool numchar(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Rewrite decimal number lexemes outside strings as "\u0001<lexeme>". Returns MC_EINVAL when a
 * string contains a raw or escaped control character other than \t \r \n (see header). */
static int premark(const char *in, size_t len, struct buf *out, struct mcjson_error *err)
{
	bool in_str = false;
	int line = 1, col = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		col++;
		if (c == '\n') {
			line++;
			col = 0;
		}
		if (in_str) {
			if (c == '\\' && i + 1 < len) {
				if (in[i + 1] == 'u' && i + 5 < len && in[i + 2] == '0' && in[i + 3] == '0' &&
				    (in[i + 4] == '0' || in[i + 4] == '1')) {
					char h = in[i + 5];
					bool ok = in[i + 4] == '0' && (h == '9' || h == 'a' || h == 'A' || h == 'd' || h == 'D');
					if (!ok)
						goto ctl;
				}
				if (buf_append(out, in + i, 2))
					return MC_ETOOBIG;
				i++;
				col++;
				continue;
			}
			if ((unsigned char)c < 0x20 && c != '\t' && c != '\r' && c != '\n')
				goto ctl;
			if (c == '"')
				in_str = false;
			if (buf_putc(out, c))
				return MC_ETOOBIG;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t j = i;
			bool dec = false;
			while (j < len && numchar(in[j])) {
				if (in[j] == '.' || in[j] == 'e' || in[j] == 'E')
					dec = true;
				j++;
			}
			if (dec) {
				/* validate the lexeme with jansson's own grammar: it must parse as a real */
				json_error_t je;
				char tmp[64];
				size_t n = j - i;
				if (n >= sizeof(tmp))
					goto badnum;
				memcpy(tmp, in + i, n);
				tmp[n] = '\0';
				json_t *v = json_loads(tmp, JSON_DECODE_ANY, &je);
				if (!v || !json_is_real(v)) {
					json_decref(v);
					goto badnum;
				}
				json_decref(v);
				if (buf_append(out, "\"\\u0001", 7) || buf_append(out, in + i, n) || buf_putc(out, '"'))
					return MC_ETOOBIG;
				col += (int)n - 1;
				i = j - 1;
				continue;
			}
		}
		if (buf_putc(out, c))
			return MC_ETOOBIG;
	}
	return MC_OK;
ctl:
	err->line = line;
	err->column = col;
	snprintf(err->text, sizeof(err->text), "control character in string");
	return MC_EINVAL;
badnum:
	err->line = line;
	err->column = col;
	snprintf(err->text, sizeof(err->text), "invalid number");
	return MC_EINVAL;
}

int mcjson_parse(const char *text, size_t len, json_t **out, struct mcjson_error *err)
{
	struct mcjson_error dummy;
	struct buf b = BUF_INIT;
	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	*out = NULL;
	buf_init(&b, len * 2 + 64);
	int rc = premark(text, len, &b, err);
	if (rc) {
		buf_release(&b);
		return rc == MC_ETOOBIG ? MC_EINVAL : rc;
	}
	json_error_t je;
	json_t *j = json_loadb(buf_str(&b), b.len, JSON_REJECT_DUPLICATES, &je);
	buf_release(&b);
	if (!j) {
		err->line = je.line;
		err->column = je.column;
		snprintf(err->text, sizeof(err->text), "%s", je.text);
		return MC_EINVAL;
	}
	*out = j;
	return MC_OK;
}

static int dump_cb(const char *p, size_t n, void *data)
{
	return buf_append(data, p, n) ? -1 : 0;
}

/* Turn "\u0001LEX" back into LEX. jansson escapes 0x01 as \u0001, and a string that is not a
 * decimal cannot contain it (mcjson_parse rejects control characters), so the match is exact. */
static int unmark(struct buf *b)
{
	static const char pat[] = "\"\\u0001";
	char *w = b->data, *r = b->data, *end = b->data + b->len;
	while (r < end) {
		char *hit = memmem(r, (size_t)(end - r), pat, sizeof(pat) - 1);
		if (!hit) {
			memmove(w, r, (size_t)(end - r));
			w += end - r;
			break;
		}
		memmove(w, r, (size_t)(hit - r));
		w += hit - r;
		r = hit + sizeof(pat) - 1;
		while (r < end && *r != '"')
			*w++ = *r++;
		r++; /* closing quote */
	}
	b->len = (size_t)(w - b->data);
	b->data[b->len] = '\0';
	return MC_OK;
}

int mcjson_dump(const json_t *j, struct buf *out)
{
	size_t start = out->len;
	if (json_dump_callback(j, dump_cb, out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15) |
				   JSON_ENCODE_ANY))
		return MC_ETOOBIG;
	if (!memmem(out->data + start, out->len - start, "\\u0001", 6))
		return MC_OK;
	/* unmark only the part we appended */
	struct buf tail = BUF_INIT;
	buf_append(&tail, out->data + start, out->len - start);
	unmark(&tail);
	out->len = start;
	int rc = buf_append(out, tail.data, tail.len);
	buf_release(&tail);
	return rc;
}

char *mcjson_dumps(const json_t *j)
{
	struct buf b = BUF_INIT;
	if (mcjson_dump(j, &b)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

bool mcjson_is_decimal(const json_t *j)
{
	return json_is_string(j) && json_string_length(j) > 1 && json_string_value(j)[0] == MCJSON_DEC_MARK;
}

const char *mcjson_decimal_text(const json_t *j)
{
	return mcjson_is_decimal(j) ? json_string_value(j) + 1 : NULL;
}

json_t *mcjson_decimal(const char *lexeme)
{
	size_t n = strlen(lexeme);
	char *s = mc_malloc(n + 2);
	s[0] = MCJSON_DEC_MARK;
	memcpy(s + 1, lexeme, n + 1);
	json_t *j = json_string(s);
	free(s);
	return j;
}

bool mcjson_is_number(const json_t *j)
{
	return json_is_integer(j) || json_is_real(j) || mcjson_is_decimal(j);
}

double mcjson_number_value(const json_t *j)
{
	if (json_is_integer(j))
		return (double)json_integer_value(j);
	if (json_is_real(j))
		return json_real_value(j);
	if (mcjson_is_decimal(j))
		return strtod(json_string_value(j) + 1, NULL);
	return 0;
}

const char *mcjson_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) && !mcjson_is_decimal(v) ? json_string_value(v) : NULL;
}

json_int_t mcjson_int(const json_t *obj, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(obj, key);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

bool mcjson_bool(const json_t *obj, const char *key, bool dflt)
{
	json_t *v = json_object_get(obj, key);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}
