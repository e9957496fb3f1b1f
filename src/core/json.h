/* core/json.h — jansson helpers, and parsing that keeps FHIR decimal lexemes.
 *
 * FHIR decimals must keep their exact text ("1.50" stays "1.50"); jansson turns them into doubles.
 * mcjson_parse() therefore rewrites every JSON number that has a fraction or an exponent into a
 * *decimal string*: a jansson string whose first byte is MCJSON_DEC_MARK (0x01) followed by the
 * lexeme. Integers stay json_integer (int64, exact). mcjson_dump() turns decimal strings back into
 * bare numbers, so the output text has the original lexemes. A real JSON string can never begin
 * with 0x01 after mcjson_parse(): control characters other than \t \r \n are rejected in strings
 * (FHIR's string pattern forbids them anyway), so the mark is unambiguous.
 *
 * Parsing rejects duplicate keys (JSON_REJECT_DUPLICATES) and reports line/column.
 * Ownership: *out is a new reference the caller must json_decref().
 */
#ifndef MC_CORE_JSON_H
#define MC_CORE_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define MCJSON_DEC_MARK '\x01'

struct mcjson_error {
	int line, column;
	char text[160];     /* safe to show a client: never contains input bytes beyond a token */
};

int mcjson_parse(const char *text, size_t len, json_t **out, struct mcjson_error *err); /* MC_OK / MC_EINVAL */
int mcjson_dump(const json_t *j, struct buf *out);    /* compact, key order kept, decimals restored */
char *mcjson_dumps(const json_t *j);                  /* malloc'd; caller frees */

bool mcjson_is_decimal(const json_t *j);             /* a decimal string from mcjson_parse */
const char *mcjson_decimal_text(const json_t *j);    /* lexeme, or NULL if not a decimal */
json_t *mcjson_decimal(const char *lexeme);          /* new decimal string (lexeme not checked) */
bool mcjson_is_number(const json_t *j);              /* integer, real or decimal string */
double mcjson_number_value(const json_t *j);         /* 0 when not a number */

/* Small accessors: NULL/default when absent or of another type. Borrowed references. */
const char *mcjson_str(const json_t *obj, const char *key);
json_int_t mcjson_int(const json_t *obj, const char *key, json_int_t dflt);
bool mcjson_bool(const json_t *obj, const char *key, bool dflt);

#endif
