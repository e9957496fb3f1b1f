/* tests/unit/test_fhir_patch.c — the JSON Patch engine (fhir/patch.h): every operation, pointer
 * escapes and array indexes, atomicity, and every error (RFC 6902 / RFC 6901 examples). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "fhir/patch.h"

static json_t *J(const char *s)
{
	json_t *j = NULL;
	struct mcjson_error e;
	if (mcjson_parse(s, strlen(s), &j, &e))
		fail_msg("bad test JSON: %s (%s)", s, e.text);
	return j;
}

/* Apply patch to doc; expect rc; on MC_OK compare with want. Returns the error for inspection. */
static struct fhir_patch_error run(const char *doc, const char *patch, int want_rc, const char *want)
{
	json_t *d = J(doc), *p = J(patch);
	json_t *orig = json_deep_copy(d);
	struct fhir_patch_error err;
	int rc = fhir_patch_apply(&d, p, &err);
	if (rc != want_rc)
		fail_msg("patch %s on %s: rc %d, want %d (%s)", patch, doc, rc, want_rc, err.msg);
	if (rc == MC_OK) {
		json_t *w = J(want);
		if (!fhir_patch_equal(d, w)) {
			char *got = mcjson_dumps(d);
			fail_msg("patch %s on %s: got %s, want %s", patch, doc, got, want);
		}
		json_decref(w);
	} else {
		/* atomic: the document is untouched */
		assert_true(json_equal(d, orig));
		assert_true(err.msg[0] != '\0');
	}
	json_decref(orig);
	json_decref(d);
	json_decref(p);
	return err;
}

static void test_add(void **state)
{
	(void)state;
	run("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]", MC_OK,
	    "{\"foo\":\"bar\",\"baz\":\"qux\"}");
	run("{\"foo\":[\"bar\",\"baz\"]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]", MC_OK,
	    "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
	run("{\"foo\":[1]}", "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":2}]", MC_OK, "{\"foo\":[1,2]}");
	run("{\"foo\":[1]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":2}]", MC_OK, "{\"foo\":[1,2]}");
	run("{\"foo\":1}", "[{\"op\":\"add\",\"path\":\"/foo\",\"value\":{\"a\":[]}}]", MC_OK, "{\"foo\":{\"a\":[]}}");
	run("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":{\"b\":2}}]", MC_OK, "{\"b\":2}");
	/* errors: missing parent, index past the end, leading zero, non-index on array, scalar parent */
	run("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", MC_EINVAL, NULL);
	run("{\"foo\":[1]}", "[{\"op\":\"add\",\"path\":\"/foo/2\",\"value\":2}]", MC_EINVAL, NULL);
	run("{\"foo\":[1]}", "[{\"op\":\"add\",\"path\":\"/foo/01\",\"value\":2}]", MC_EINVAL, NULL);
	run("{\"foo\":[1]}", "[{\"op\":\"add\",\"path\":\"/foo/x\",\"value\":2}]", MC_EINVAL, NULL);
	run("{\"foo\":1}", "[{\"op\":\"add\",\"path\":\"/foo/x\",\"value\":2}]", MC_EINVAL, NULL);
	run("{\"foo\":1}", "[{\"op\":\"add\",\"path\":\"/x\"}]", MC_EINVAL, NULL);
}

static void test_remove_replace(void **state)
{
	(void)state;
	run("{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]", MC_OK, "{\"foo\":\"bar\"}");
	run("{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", MC_OK,
	    "{\"foo\":[\"bar\",\"baz\"]}");
	run("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b\"}]", MC_EINVAL, NULL);
	run("{\"a\":[1]}", "[{\"op\":\"remove\",\"path\":\"/a/1\"}]", MC_EINVAL, NULL);
	run("{\"a\":[1]}", "[{\"op\":\"remove\",\"path\":\"/a/-\"}]", MC_EINVAL, NULL);
	run("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", MC_EINVAL, NULL);
	run("{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]", MC_OK,
	    "{\"baz\":\"boo\",\"foo\":\"bar\"}");
	run("{\"a\":[1,2]}", "[{\"op\":\"replace\",\"path\":\"/a/0\",\"value\":9}]", MC_OK, "{\"a\":[9,2]}");
	run("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"z\":0}}]", MC_OK, "{\"z\":0}");
	run("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":2}]", MC_EINVAL, NULL);
	run("{\"a\":[1]}", "[{\"op\":\"replace\",\"path\":\"/a/5\",\"value\":2}]", MC_EINVAL, NULL);
}

static void test_move_copy(void **state)
{
	(void)state;
	run("{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
	    "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]", MC_OK,
	    "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
	run("{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}", "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
	    MC_OK, "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
	run("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]", MC_OK, "{\"a\":{\"b\":1}}");
	run("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/c\"}]", MC_EINVAL, NULL);
	run("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/nope\",\"path\":\"/b\"}]", MC_EINVAL, NULL);
	run("{\"a\":1}", "[{\"op\":\"move\",\"path\":\"/b\"}]", MC_EINVAL, NULL);
	run("{\"a\":{\"x\":[1]}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},"
				  "{\"op\":\"add\",\"path\":\"/b/x/-\",\"value\":2}]",
	    MC_OK, "{\"a\":{\"x\":[1]},\"b\":{\"x\":[1,2]}}");   /* a deep copy: a is unchanged */
	run("{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/no/such\"}]", MC_EINVAL, NULL);
}

static void test_test_op(void **state)
{
	(void)state;
	run("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
	    "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
	    MC_OK, "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
	/* numbers by value: FHIR decimals keep their lexeme, 1.50 == 1.5 == 1.5e0 */
	run("{\"v\":1.50}", "[{\"op\":\"test\",\"path\":\"/v\",\"value\":1.5}]", MC_OK, "{\"v\":1.50}");
	run("{\"v\":2}", "[{\"op\":\"test\",\"path\":\"/v\",\"value\":2.0}]", MC_OK, "{\"v\":2}");
	run("{\"v\":{\"a\":[1,{\"b\":null}]}}", "[{\"op\":\"test\",\"path\":\"/v\",\"value\":{\"a\":[1,{\"b\":null}]}}]",
	    MC_OK, "{\"v\":{\"a\":[1,{\"b\":null}]}}");
	struct fhir_patch_error e =
		run("{\"baz\":\"qux\"}",
		    "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"x\"},{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"}]",
		    MC_EUNPROC, NULL);
	assert_int_equal(e.op, 1);            /* the replace before it was rolled back too */
	run("{\"v\":\"1\"}", "[{\"op\":\"test\",\"path\":\"/v\",\"value\":1}]", MC_EUNPROC, NULL);
	run("{\"v\":[1,2]}", "[{\"op\":\"test\",\"path\":\"/v\",\"value\":[2,1]}]", MC_EUNPROC, NULL);
	run("{\"v\":{\"a\":1}}", "[{\"op\":\"test\",\"path\":\"/v\",\"value\":{\"a\":1,\"b\":2}}]", MC_EUNPROC, NULL);
	run("{}", "[{\"op\":\"test\",\"path\":\"/missing\",\"value\":1}]", MC_EINVAL, NULL);
}

static void test_pointer_escapes(void **state)
{
	(void)state;
	run("{\"a/b\":1,\"m~n\":2}", "[{\"op\":\"test\",\"path\":\"/a~1b\",\"value\":1},"
				    "{\"op\":\"test\",\"path\":\"/m~0n\",\"value\":2},"
				    "{\"op\":\"remove\",\"path\":\"/m~0n\"}]",
	    MC_OK, "{\"a/b\":1}");
	/* ~01 is "~1", not "/" (decode order) */
	run("{\"~1\":1}", "[{\"op\":\"remove\",\"path\":\"/~01\"}]", MC_OK, "{}");
	run("{\"\":1}", "[{\"op\":\"replace\",\"path\":\"/\",\"value\":2}]", MC_OK, "{\"\":2}");
	struct fhir_patch_error e = run("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/a~2\"}]", MC_EINVAL, NULL);
	assert_string_equal(e.path, "/0/path");
	run("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/a~\"}]", MC_EINVAL, NULL);
	run("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"a\"}]", MC_EINVAL, NULL);
	/* too deep */
	char deep[1024] = "[{\"op\":\"add\",\"path\":\"";
	for (int i = 0; i < FHIR_PATCH_MAX_DEPTH + 1; i++)
		memcpy(deep + strlen(deep), "/a", 3);
	memcpy(deep + strlen(deep), "\",\"value\":1}]", 14);
	run("{}", deep, MC_ETOOBIG, NULL);
}

static void test_malformed(void **state)
{
	(void)state;
	run("{}", "{\"op\":\"add\"}", MC_EINVAL, NULL);
	run("{}", "[1]", MC_EINVAL, NULL);
	struct fhir_patch_error e = run("{}", "[{\"path\":\"/a\",\"value\":1}]", MC_EINVAL, NULL);
	assert_string_equal(e.path, "/0/op");
	e = run("{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},{\"op\":\"frobnicate\",\"path\":\"/a\"}]", MC_EINVAL,
		NULL);
	assert_int_equal(e.op, 1);
	assert_non_null(strstr(e.msg, "operation 1"));
	run("{}", "[{\"op\":\"add\",\"path\":5,\"value\":1}]", MC_EINVAL, NULL);
	run("{}", "[{\"op\":\"copy\",\"from\":1,\"path\":\"/a\"}]", MC_EINVAL, NULL);
	/* too many operations */
	size_t n = FHIR_PATCH_MAX_OPS + 1;
	char *big = mc_malloc(n * 40 + 8);
	size_t o = 0;
	big[o++] = '[';
	for (size_t i = 0; i < n; i++) {
		const char *op = "{\"op\":\"test\",\"path\":\"\",\"value\":{}}";
		if (i)
			big[o++] = ',';
		memcpy(big + o, op, strlen(op));
		o += strlen(op);
	}
	big[o++] = ']';
	big[o] = '\0';
	run("{}", big, MC_ETOOBIG, NULL);
	free(big);
	run("{}", "[]", MC_OK, "{}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),           cmocka_unit_test(test_remove_replace),
		cmocka_unit_test(test_move_copy),     cmocka_unit_test(test_test_op),
		cmocka_unit_test(test_pointer_escapes), cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
