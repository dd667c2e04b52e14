#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcovcache.h"
#include "geo.h"
#include "log.h"

#define MIGRATE_MAX_FILES 256
#define MIGRATE_MAX_BYTES (1024 * 1024)
#define MIGRATE_LOCK_KEY  "727001"

typedef struct migrate_file {
    long version;
    char name[256];
    const char *sql; /* compiled in, or NULL: read from the directory when applied */
} migrate_file;

static int migrate__cmp(const void *a, const void *b)
{
    const migrate_file *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static int migrate__exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : REINT_EINVAL;
}

static int migrate__read(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return REINT_EINVAL;
    }
    char *buf = malloc(MIGRATE_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return REINT_ENOMEM;
    }
    size_t n = fread(buf, 1, MIGRATE_MAX_BYTES + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > MIGRATE_MAX_BYTES) {
        free(buf);
        if (failed)
            snprintf(err, errlen, "%s: read error", path);
        else
            snprintf(err, errlen, "%s: larger than %d bytes", path, MIGRATE_MAX_BYTES);
        return REINT_EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* Loads geo_all() into the geo table (one statement, array parameters). */
static int migrate__geo(PGconn *c, char *err, size_t errlen)
{
    unsigned n = 0;
    const geo_local_level *all = geo_all(&n);
    size_t cap = (size_t)n * 8 + 16;
    char *a[3];
    int rc = REINT_EINVAL;
    for (int k = 0; k < 3; k++)
        a[k] = malloc(cap);
    if (!a[0] || !a[1] || !a[2]) {
        snprintf(err, errlen, "out of memory");
        rc = REINT_ENOMEM;
        goto out;
    }
    size_t o[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        a[k][o[k]++] = '{';
    /* cap allows 8 bytes per value (codes have at most 5 digits); a longer one is refused
     * rather than cut. */
    for (unsigned i = 0; i < n; i++) {
        unsigned v[3] = {all[i].code, all[i].district, all[i].province};
        for (int k = 0; k < 3; k++) {
            int w = snprintf(a[k] + o[k], cap - o[k], "%s%u", i ? "," : "", v[k]);
            if (w < 0 || (size_t)w >= cap - o[k] - 1) {
                snprintf(err, errlen, "loading the geo table: local level %u does not fit",
                         all[i].code);
                goto out;
            }
            o[k] += (size_t)w;
        }
    }
    for (int k = 0; k < 3; k++)
        snprintf(a[k] + o[k], cap - o[k], "}");
    const char *vals[3] = {a[0], a[1], a[2]};
    PGresult *r =
        PQexecParams(c,
                     "INSERT INTO geo(municipality, district, province)"
                     " SELECT * FROM unnest($1::integer[], $2::smallint[], $3::smallint[])"
                     " ON CONFLICT (municipality) DO UPDATE SET district = excluded.district,"
                     " province = excluded.province",
                     3, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        snprintf(err, errlen, "loading the geo table: %s", PQerrorMessage(c));
    else
        rc = 0;
    PQclear(r);
out:
    for (int k = 0; k < 3; k++)
        free(a[k]);
    return rc;
}

static void migrate__quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int migrate_run(PGconn *c, const char *dir, char *err, size_t errlen)
{
    migrate_file *files = calloc(MIGRATE_MAX_FILES, sizeof(*files));
    size_t nf = 0;
    int applied = 0, locked = 0, rc = REINT_EINVAL;
    char *sql = NULL;
    if (files == NULL) {
        snprintf(err, errlen, "out of memory");
        return REINT_ENOMEM;
    }
    for (size_t i = 0; dir == NULL && i < migrate_embedded_n && i < MIGRATE_MAX_FILES; i++) {
        files[nf].version = migrate_embedded[i].version;
        snprintf(files[nf].name, sizeof(files[nf].name), "%s", migrate_embedded[i].name);
        files[nf].sql = migrate_embedded[i].sql;
        nf++;
    }
    DIR *d = dir ? opendir(dir) : NULL;
    if (dir && d == NULL) {
        snprintf(err, errlen, "migrations directory %s: %s", dir, strerror(errno));
        goto out;
    }
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        char *end = NULL;
        if (l < 9 || l >= sizeof(files[0].name) || strcmp(e->d_name + l - 4, ".sql") != 0)
            continue;
        long v = strtol(e->d_name, &end, 10);
        if (end != e->d_name + 4 || *end != '_' || v <= 0)
            continue;
        if (nf == MIGRATE_MAX_FILES) {
            closedir(d);
            snprintf(err, errlen, "%s: more than %d migrations", dir, MIGRATE_MAX_FILES);
            goto out;
        }
        files[nf].version = v;
        snprintf(files[nf].name, sizeof(files[nf].name), "%s", e->d_name);
        nf++;
    }
    if (d)
        closedir(d);
    /* An empty or mistaken directory wrote schema_migrations, then failed on the geography,
     * leaving a half-made schema (the deployment from the documentation). */
    if (nf == 0) {
        snprintf(err, errlen,
                 "%s holds no migration (NNNN_name.sql); leave [federal] migrations "
                 "empty for those compiled into federal-api",
                 dir ? dir : "federal-api");
        goto out;
    }
    qsort(files, nf, sizeof(*files), migrate__cmp);
    for (size_t i = 1; i < nf; i++) {
        if (files[i].version == files[i - 1].version) {
            snprintf(err, errlen, "%s and %s carry the same version", files[i - 1].name,
                     files[i].name);
            goto out;
        }
    }
    /* "relation already exists, skipping" notices are expected on every start. */
    PQsetNoticeProcessor(c, migrate__quiet, NULL);
    if (migrate__exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err, errlen) != 0)
        goto out;
    locked = 1;
    if (migrate__exec(c,
                      "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY "
                      "KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                      err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < nf; i++) {
        char ver[24], path[1400];
        snprintf(ver, sizeof(ver), "%ld", files[i].version);
        const char *p1[1] = {ver};
        PGresult *r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
                                   p1, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        int have = st == PGRES_TUPLES_OK && PQntuples(r) > 0;
        PQclear(r);
        if (st != PGRES_TUPLES_OK) {
            snprintf(err, errlen, "reading schema_migrations: %s", PQerrorMessage(c));
            goto out;
        }
        if (have)
            continue;
        if (files[i].sql == NULL) {
            snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
            int r2 = migrate__read(path, &sql, err, errlen);
            if (r2 != 0) {
                rc = r2;
                goto out;
            }
        }
        const char *text = files[i].sql ? files[i].sql : sql;
        if (migrate__exec(c, "BEGIN", err, errlen) != 0)
            goto out;
        char e2[512];
        if (migrate__exec(c, text, e2, sizeof(e2)) != 0) {
            snprintf(err, errlen, "%s: %s", files[i].name, e2);
            migrate__exec(c, "ROLLBACK", e2, sizeof(e2));
            goto out;
        }
        const char *p2[2] = {ver, files[i].name};
        r = PQexecParams(c, "INSERT INTO schema_migrations(version, name) VALUES ($1, $2)", 2, NULL,
                         p2, NULL, NULL, 0);
        st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK || migrate__exec(c, "COMMIT", e2, sizeof(e2)) != 0) {
            snprintf(err, errlen, "%s: recording the version: %s", files[i].name,
                     PQerrorMessage(c));
            migrate__exec(c, "ROLLBACK", e2, sizeof(e2));
            goto out;
        }
        free(sql);
        sql = NULL;
        log_info("migration %s applied", files[i].name);
        applied++;
    }
    int r3 = migrate__geo(c, err, errlen);
    if (r3 != 0) {
        rc = r3;
        goto out;
    }
    /* A migration or the geography may have changed what the processes already running keep
     * (fcovcache.h): they forget it. */
    if (migrate__exec(c, "SELECT pg_notify('" FCOVCACHE_CHANNEL "', '*')", err, errlen) != 0) {
        rc = REINT_EINVAL;
        goto out;
    }
    rc = applied;
out:
    if (locked) {
        char e3[256];
        migrate__exec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", e3, sizeof(e3));
    }
    free(sql);
    free(files);
    return rc;
}
