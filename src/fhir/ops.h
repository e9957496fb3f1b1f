/* fhir/ops.h — FHIR operations: $validate, $meta, Patient $everything, and the bulk-data export
 * routes (whose engine is fhir/export.h).
 *
 *   POST   /fhir/{type}/$validate               validate, store nothing (OperationOutcome, 200)
 *   POST   /fhir/{type}/{id}/$validate          the same, checking the id too
 *   GET    /fhir/$meta                          Parameters: tags, profiles, security labels in use
 *   GET    /fhir/{type}/$meta                   the same, for one type
 *   GET    /fhir/{type}/{id}/$meta              the meta of one resource
 *   GET    /fhir/{type}/{id}/$everything        Patient only: the patient's compartment (searchset,
 *                                               _count/_offset paging, _since, _type)
 *   GET    /fhir/$export                        bulk export kick-off (system level)
 *   GET    /fhir/Patient/$export                every patient's compartment
 *   GET    /fhir/Group/{id}/$export             the compartments of a Group's members
 *   GET    /fhir/$export-status/{job}           202 + X-Progress while running, 200 + manifest
 *   DELETE /fhir/$export-status/{job}           cancel and delete the job and its files
 *   GET    /fhir/$export-file/{job}/{file}      one NDJSON file (only to the job's owner)
 *
 * Access: the dispatcher checks RBAC for {type} and OAuth2 scopes; handlers check the patient
 * (auth_patient_access / auth_patient_scope) as fhir/rest.c does.
 */
#ifndef MC_FHIR_OPS_H
#define MC_FHIR_OPS_H
#include <jansson.h>

#include "fhir/resource.h"
#include "http/route.h"

extern const struct route_table fhir_ops_routes;

/* The $validate outcome for res as a resource of type (id: the URL's id or NULL; mode: NULL,
 * "create", "update" or "delete"). Returns a new OperationOutcome: issues with severity error, or
 * one information issue "ok". Pure; for the handler and unit tests. */
json_t *fhir_validate_outcome(const json_t *res, const char *type, const char *id, const char *mode);

#endif
