/* modules/clinical/icd10.h — the shipped ICD-10-CM subset: code shape, lookup and search-as-you-type.
 *
 * The table is data/icd10/icd10cm_subset.def compiled in (sorted by code, unique). Pure functions
 * over const data: thread-safe, no allocation. Entries and their strings are static.
 *
 * Code shape (ICD-10-CM): [A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})? — a letter other than U, a
 * digit, a digit or A/B, then optionally a dot and 1..4 characters (digits or letters other than U).
 */
#ifndef MC_MODULES_CLINICAL_ICD10_H
#define MC_MODULES_CLINICAL_ICD10_H
#include <stdbool.h>
#include <stddef.h>

#define ICD10_SYSTEM "http://hl7.org/fhir/sid/icd-10-cm"
#define ICD10_CODE_MAX 16      /* buffer size for a normalized code ("S72.001A" + NUL fits) */
#define ICD10_QUERY_MAX 100    /* longest search text accepted */
#define ICD10_RESULTS_MAX 50   /* most results one search returns */

struct icd10_entry {
	const char *code;      /* "E11.9" */
	const char *title;     /* "Type 2 diabetes mellitus without complications" */
};

/* Does code (exactly as given: upper case, with the dot) have the ICD-10-CM shape? */
bool icd10_shape_ok(const char *code);
/* Normalize user input into out: trims blanks, upper-cases, and inserts the dot after the third
 * character when it is missing ("e119" -> "E11.9"). MC_OK when the result has the shape, else
 * MC_EINVAL (out then holds "" ). in may be NULL (MC_EINVAL). */
int icd10_normalize(const char *in, char out[ICD10_CODE_MAX]);
/* The entry for a normalized code, or NULL when the subset does not list it. */
const struct icd10_entry *icd10_lookup(const char *code);
/* Entries, in code order: icd10_at(i) for i < icd10_count(). */
size_t icd10_count(void);
const struct icd10_entry *icd10_at(size_t i);

/* Search-as-you-type: up to max (<= ICD10_RESULTS_MAX) entries into out, best first.
 * Matches: the code starts with q (case-insensitive, the dot optional: "e11", "E11.6", "e116"),
 * or every word of q starts some word of the title ("diab typ" finds "Type 2 diabetes ...").
 * Ranking: exact code, then code prefixes (shorter codes first), then title matches — a match on
 * the title's first word first, then whole-word matches, then shorter titles; ties in code order.
 * Returns the number written; 0 for an empty query or one longer than ICD10_QUERY_MAX. */
size_t icd10_search(const char *q, const struct icd10_entry **out, size_t max);

#endif
