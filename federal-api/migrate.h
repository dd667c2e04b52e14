/* Versioned schema migrations (federal-api/migrations/NNNN_name.sql, compiled in), applied in
 * order, each inside its own transaction with its version recorded in schema_migrations, under an
 * advisory lock so that several federal-api processes starting together apply each once.
 * Also loads the geography compiled into the binary into the geo table. Synchronous libpq:
 * used by the command line and before the event loop starts, never on the loop. */
#ifndef FEDERAL_API_MIGRATE_H
#define FEDERAL_API_MIGRATE_H

#include "error.h"

#include <libpq-fe.h>
#include <stddef.h>

/* A migration compiled into the binary (tools/embed_migrations.sh; sql NUL-terminated). */
typedef struct migrate_sql {
    long version;
    const char *name; /* "0001_schema.sql" */
    const char *sql;
    size_t len;
} migrate_sql;

/* federal-api/migrations/NNNN_*.sql as built (the generated fmigrations.c), in order. */
extern const migrate_sql migrate_embedded[];
extern const size_t migrate_embedded_n;

/* Applies the pending migrations on conn, then loads the geo table: those compiled in when
 * dir is NULL, else those of dir ([federal] migrations, for a schema under development; a
 * directory holding none is refused before anything is written). Returns the number applied
 * (>= 0), or REINT_EINVAL or REINT_ENOMEM with a message in err. */
int migrate_run(PGconn *conn, const char *dir, char *err, size_t errlen);

#endif
