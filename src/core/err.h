/* core/err.h — the one closed set of result codes.
 *
 * Every function that can fail returns an int that is one of MC_*: MC_OK (0) or an error.
 * The X-macro gives each code its HTTP status and its wire code (the /api/v1 envelope's
 * error.code, and the OperationOutcome issue.code for FHIR routes). Map to HTTP only here.
 */
#ifndef MC_CORE_ERR_H
#define MC_CORE_ERR_H

/*  name            http  api wire code            FHIR issue code */
#define MC_ERRORS(X)                                                         \
	X(OK,            200, "OK",                    "informational")       \
	X(EINVAL,        400, "VALIDATION_ERROR",      "invalid")             \
	X(EUNAUTH,       401, "UNAUTHORIZED",          "login")               \
	X(EFORBIDDEN,    403, "FORBIDDEN",             "forbidden")           \
	X(ENOTFOUND,     404, "NOT_FOUND",             "not-found")           \
	X(EMETHOD,       405, "METHOD_NOT_ALLOWED",    "not-supported")       \
	X(ENOTACCEPT,    406, "NOT_ACCEPTABLE",        "not-supported")       \
	X(ECONFLICT,     409, "CONFLICT",              "conflict")            \
	X(EGONE,         410, "GONE",                  "deleted")             \
	X(EPRECOND,      412, "PRECONDITION_FAILED",   "conflict")            \
	X(ETOOBIG,       413, "PAYLOAD_TOO_LARGE",     "too-costly")          \
	X(EMEDIA,        415, "UNSUPPORTED_MEDIA_TYPE","not-supported")       \
	X(EUNPROC,       422, "UNPROCESSABLE",         "processing")          \
	X(ELOCKED,       423, "ACCOUNT_LOCKED",        "security")            \
	X(EPRECONDREQ,   428, "PRECONDITION_REQUIRED", "required")            \
	X(ERATE,         429, "RATE_LIMIT_EXCEEDED",   "throttled")           \
	X(EHDRTOOBIG,    431, "HEADERS_TOO_LARGE",     "too-costly")          \
	X(EINTERNAL,     500, "INTERNAL_ERROR",        "exception")           \
	X(ENOTIMPL,      501, "NOT_IMPLEMENTED",       "not-supported")       \
	X(EUNAVAIL,      503, "SERVICE_UNAVAILABLE",   "transient")           \
	X(ETIMEOUT,      504, "TIMEOUT",               "timeout")

enum mc_code {
#define MC_X_ENUM(name, http, wire, fhir) MC_##name,
	MC_ERRORS(MC_X_ENUM)
#undef MC_X_ENUM
	MC__COUNT
};

int mc_http_status(int code);          /* 500 for unknown codes */
const char *mc_wire_code(int code);    /* "INTERNAL_ERROR" for unknown codes; static string */
const char *mc_fhir_code(int code);    /* OperationOutcome issue.code; static string */
const char *mc_code_name(int code);    /* "ENOTFOUND": for logs */

#endif
