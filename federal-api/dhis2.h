/* What a DHIS2 instance imports with no hand mapping (docs/DHIS2.md): the metadata export
 * (data elements, category combinations, categories, options and option combinations,
 * indicators for the ratios, Nepal's organisation units), dataValueSets and ADX. Every object
 * has a DHIS2-style id (11 characters, a letter then letters and digits) derived from our code
 * by SHA-256, so that ids never change between builds, instances or restarts; periods are
 * written as DHIS2 writes them (ISO periods for the Gregorian kinds, those of a DHIS2 using the
 * Nepali calendar for the BS kinds). Values come from frender_dv_each, the one function of a
 * cell's contents, so JSON, dataValueSets and ADX show the public the same perturbed value.
 * Pure: no I/O, no database. Renderers append to b and return 0, or REINT_ETOOBIG when b
 * failed (its maximum or memory). */
#ifndef FEDERAL_API_DHIS2_H
#define FEDERAL_API_DHIS2_H

#include "error.h"

#include <stddef.h>

#include "findicators.h"
#include "params.h"
#include "sbuf.h"

#define DHIS2_UID_LEN 11

/* DHIS2's own default category combination and its one option combination: the totals use
 * them, as any DHIS2 instance has them under these ids. */
#define DHIS2_DEFAULT_COMBO "bjDvmb4bfuf"
#define DHIS2_DEFAULT_COC   "HllvX50cXC0"

/* The id of the object of type kind ("de", "coc", "ou", ...) whose code is code, into out. */
void dhis2_uid(const char *kind, const char *code, char out[DHIS2_UID_LEN + 1]);

/* Our period ("2026-07", "FY2083/84") as DHIS2 writes it ("202607", "2083April") into out.
 * Returns 0, or REINT_EINVAL for a fiscal trimester (DHIS2 has no four-month period type) or
 * a string that is not a period. */
int dhis2_period(const char *period, char *out, size_t outlen);

/* The period as ADX writes it: an ISO 8601 interval from its first Gregorian day
 * ("2026-07-01/P1M", "2026-07-17/P31D" for a BS month). 0 or REINT_EINVAL as dhis2_period. */
int dhis2_adx_period(const char *period, char *out, size_t outlen);

/* GET /v1/metadata: the whole metadata export. */
int dhis2_metadata(sbuf *b);

/* GET /v1/dataValueSets: page q->page of q->page_size values of r, with DHIS2's pager; ids
 * are DHIS2 ids, or our codes with idScheme=CODE. */
int dhis2_dvs(sbuf *b, const params_query *q, const findicators_result *r, int perturbed);

/* GET /v1/adx: the same values (the same page) as an ADX document
 * (urn:ihe:qrph:adx:2015): one group for the area and period, a dataValue per value with the
 * data element's code and one attribute per category (its code = its option's code). */
int dhis2_adx(sbuf *b, const params_query *q, const findicators_result *r, int perturbed);

#endif
