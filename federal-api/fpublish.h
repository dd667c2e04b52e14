/* National directives over HTTPS (DESIGN.md, Directives). GET /v1/directives lists the
 * published directives, newest first, to every role (with who published each to admins).
 * POST /v1/directives (admins) validates the body (fdirectives.h; 400 for malformed JSON, 422
 * naming each field refused), numbers it max + 1, signs it with this server's Ed25519 key,
 * stores it and its audit row in one statement (renumbering when a concurrent publication
 * took the serial first), and has the hub ingest push it to connected hubs. */
#ifndef FEDERAL_API_FPUBLISH_H
#define FEDERAL_API_FPUBLISH_H

#include "freq.h"

/* GET /v1/directives: f->q.limit directives (100 when not given), audited in the same
 * statement. Answers and frees f. */
void fpublish_list(freq *f);

/* POST /v1/directives with the request's body: 201 {"serial", "key_id"} once stored; 403
 * for roles other than admin, 503 when this server has no signing key. Answers and frees f. */
void fpublish_post(freq *f);

#endif
