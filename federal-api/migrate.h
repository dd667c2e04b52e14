/* Versioned schema migrations (federal-api/migrations/NNNN_name.sql), applied in order, each
 * inside its own transaction with its version recorded in schema_migrations, under an
 * advisory lock so that several federal-api processes starting together apply each once.
 * Also loads the geography compiled into the binary into the geo table. Synchronous libpq:
 * used by the command line and before the event loop starts, never on the loop. */
#ifndef FEDERAL_API_MIGRATE_H
#define FEDERAL_API_MIGRATE_H

#include "error.h"

#include <libpq-fe.h>
#include <stddef.h>

/* The migrations directory next to the binary's source tree (build/bin/../../federal-api/
 * migrations), else the installed one; written into out. Returns 0 or REINT_EINVAL. */
int migrate_default_dir(char *out, size_t outlen);

/* Applies the pending migrations of dir on conn, then loads the geo table. Returns the
 * number applied (>= 0), or REINT_EINVAL or REINT_ENOMEM with a message in err. */
int migrate_run(PGconn *conn, const char *dir, char *err, size_t errlen);

#endif
