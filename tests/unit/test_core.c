/* tests/unit/test_core.c — buffers, arenas, decimal-preserving JSON, FHIR time, ids, config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"

static void test_buf_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "1234567"), MC_OK);
	assert_int_equal(buf_puts(&b, "8"), MC_ETOOBIG);
	assert_string_equal(buf_str(&b), "1234567");
	buf_release(&b);
	buf_init(&b, 0);
	assert_int_equal(buf_json_str(&b, "a\"b\\\n\x01"), MC_OK);
	assert_string_equal(buf_str(&b), "\"a\\\"b\\\\\\n\\u0001\"");
	buf_release(&b);
}

static int cleaned;
static void cleanup(void *p) { cleaned += *(int *)p; }

static void test_arena(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	int one = 1, two = 2;
	char *s = arena_printf(a, "%s-%d", "x", 42);
	assert_string_equal(s, "x-42");
	void *big = arena_alloc(a, 100000); /* larger than a block */
	memset(big, 1, 100000);
	for (int i = 0; i < 1000; i++)
		assert_non_null(arena_zalloc(a, 33));
	arena_defer(a, cleanup, &one);
	arena_defer(a, cleanup, &two);
	cleaned = 0;
	arena_destroy(a);
	assert_int_equal(cleaned, 3);
}

static void roundtrip(const char *in, const char *want)
{
	json_t *j;
	struct mcjson_error e;
	assert_int_equal(mcjson_parse(in, strlen(in), &j, &e), MC_OK);
	char *out = mcjson_dumps(j);
	assert_string_equal(out, want);
	free(out);
	json_decref(j);
}

static void test_json_decimals(void **state)
{
	(void)state;
	roundtrip("{\"v\": 1.50, \"w\": [36.8, -0.0, 1e3, 2], \"s\": \"1.50\"}",
		  "{\"v\":1.50,\"w\":[36.8,-0.0,1e3,2],\"s\":\"1.50\"}");
	roundtrip("{\"big\": 9007199254740993}", "{\"big\":9007199254740993}");
	json_t *j;
	const char *in = "{\"x\":  12.340}";
	assert_int_equal(mcjson_parse(in, strlen(in), &j, NULL), MC_OK);
	json_t *x = json_object_get(j, "x");
	assert_true(mcjson_is_decimal(x));
	assert_string_equal(mcjson_decimal_text(x), "12.340");
	assert_true(mcjson_number_value(x) > 12.33 && mcjson_number_value(x) < 12.35);
	assert_null(mcjson_str(j, "x"));
	json_decref(j);
}

static void test_json_rejects(void **state)
{
	(void)state;
	static const char *bad[] = {
		"{\"a\":1,\"a\":2}",        /* duplicate key */
		"{\"a\":\"\\u0001\"}",      /* control char */
		"{\"a\":1.}",               /* bad number */
		"{\"a\":01.5}",
		"{\"a\":",                  /* truncated */
		"{\"a\":\"x\x02\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = NULL;
		struct mcjson_error e;
		assert_int_equal(mcjson_parse(bad[i], strlen(bad[i]), &j, &e), MC_EINVAL);
		assert_null(j);
		assert_true(e.text[0] != '\0');
	}
	/* tab and newline escapes are fine */
	json_t *j;
	assert_int_equal(mcjson_parse("{\"a\":\"x\\ty\\n\"}", 14, &j, NULL), MC_OK);
	json_decref(j);
}

static void test_time(void **state)
{
	(void)state;
	int64_t lo, hi;
	enum mctime_prec p;
	assert_int_equal(mctime_parse_fhir("1980", &lo, &hi, &p), MC_OK);
	assert_int_equal(p, MCT_YEAR);
	char t[32];
	mctime_format_ms(lo, t);
	assert_string_equal(t, "1980-01-01T00:00:00.000Z");
	mctime_format_ms(hi, t);
	assert_string_equal(t, "1981-01-01T00:00:00.000Z");
	assert_int_equal(mctime_parse_fhir("2024-02", &lo, &hi, NULL), MC_OK);
	assert_int_equal(hi - lo, 29LL * 86400000);
	assert_int_equal(mctime_parse_fhir("2024-05-07T10:00:00+02:00", &lo, &hi, &p), MC_OK);
	mctime_format_ms(lo, t);
	assert_string_equal(t, "2024-05-07T08:00:00.000Z");
	assert_int_equal(mctime_parse_fhir("2024-05-07T10:00:00.5Z", &lo, &hi, &p), MC_OK);
	assert_int_equal(p, MCT_MILLI);
	assert_int_equal(lo % 1000, 500);
	static const char *bad[] = {"2023-02-29", "2024-13", "24-01-01", "2024-01-01T10:00", "2024-01-01T25:00:00Z",
				    "2024-1-1", "", "abcd", "2024-01-01T10:00:00"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mctime_parse_fhir(bad[i], &lo, &hi, NULL), MC_EINVAL);
}

static void test_ids(void **state)
{
	(void)state;
	char a[MCID_LEN + 1], b[MCID_LEN + 1];
	mcid_new(a);
	mcid_new(b);
	assert_int_equal(strlen(a), 36);
	assert_true(mcid_valid_fhir_id(a));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '7');              /* version 7 */
	assert_true(strncmp(a, b, 8) <= 0);       /* time ordered */
	assert_false(mcid_valid_fhir_id("../etc"));
	assert_false(mcid_valid_fhir_id(""));
	char tok[64];
	mcid_token(tok, sizeof(tok), 32);
	assert_int_equal(strlen(tok), 43);
}

static void test_config(void **state)
{
	(void)state;
	struct mc_config c;
	char err[160];
	setenv("MEDCORE_LISTEN", "127.0.0.1:9999", 1);
	setenv("MEDCORE_MAX_BODY", "2048", 1);
	char *argv[] = {"--max-body", "4096", "--db=sqlite:/tmp/x.db", "rest"};
	int used = 0;
	assert_int_equal(config_load(&c, 4, argv, &used, err, sizeof(err)), MC_OK);
	assert_int_equal(used, 3);
	assert_string_equal(c.listen, "127.0.0.1:9999");      /* env over default */
	assert_int_equal(c.max_body, 4096);                   /* flag over env */
	assert_string_equal(c.db, "sqlite:/tmp/x.db");
	config_release(&c);
	char *bad1[] = {"--max-body", "1"};
	assert_int_equal(config_load(&c, 2, bad1, &used, err, sizeof(err)), MC_EINVAL);
	config_release(&c);
	char *bad2[] = {"--nope", "1"};
	assert_int_equal(config_load(&c, 2, bad2, &used, err, sizeof(err)), MC_EINVAL);
	assert_non_null(strstr(err, "unknown option"));
	config_release(&c);
	unsetenv("MEDCORE_LISTEN");
	unsetenv("MEDCORE_MAX_BODY");
	assert_true(config_list_has("admin, auditor", "auditor"));
	assert_false(config_list_has("admin,auditor", "audit"));
}

static void test_err_table(void **state)
{
	(void)state;
	assert_int_equal(mc_http_status(MC_ENOTFOUND), 404);
	assert_string_equal(mc_wire_code(MC_EINVAL), "VALIDATION_ERROR");
	assert_string_equal(mc_fhir_code(MC_EPRECOND), "conflict");
	assert_int_equal(mc_http_status(9999), 500);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_max),    cmocka_unit_test(test_arena), cmocka_unit_test(test_json_decimals),
		cmocka_unit_test(test_json_rejects), cmocka_unit_test(test_time), cmocka_unit_test(test_ids),
		cmocka_unit_test(test_config),     cmocka_unit_test(test_err_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
