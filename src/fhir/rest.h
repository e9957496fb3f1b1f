/* fhir/rest.h — the FHIR R4 REST API (/fhir/...): the generic CRUD, history and search routes.
 *
 *   GET    /fhir/metadata                      CapabilityStatement (public)
 *   POST   /fhir/{type}                        create
 *   GET    /fhir/{type}                        search (query string)
 *   POST   /fhir/{type}/_search                search (application/x-www-form-urlencoded body)
 *   GET    /fhir/{type}/_history               type history
 *   GET    /fhir/{type}/{id}                   read (ETag, If-None-Match → 304)
 *   PUT    /fhir/{type}/{id}                   update / update-as-create (If-Match → 412)
 *   DELETE /fhir/{type}/{id}                   logical delete (204)
 *   GET    /fhir/{type}/{id}/_history          instance history
 *   GET    /fhir/{type}/{id}/_history/{vid}    vread
 *   GET    /fhir/_history                      system history
 *
 * The dispatcher has checked the RBAC permission for {type} (ROUTE_PERM_BY_TYPE); the handlers
 * check which patient (auth_patient_access / auth_patient_scope). AuditEvent is not served here
 * (the audit module owns it): every route answers 405 for it. Responses are
 * application/fhir+json; reads and searches splice the stored JSON bytes without re-parsing.
 */
#ifndef MC_FHIR_REST_H
#define MC_FHIR_REST_H
#include "http/route.h"

extern const struct route_table fhir_routes;

/* The CapabilityStatement served at /fhir/metadata (built once; static storage, never freed). */
const char *fhir_capability_json(size_t *len);

#endif
