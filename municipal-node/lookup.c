#include "lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "localrow.h"
#include "log.h"
#include "personkey.h"
#include "sbuf.h"
#include "store.h"

/* A name is searched word by word, in any order ("Thapa Sita" finds "Sita Thapa"): each
 * word a LIKE pattern of at most LOOKUP_WORD_LEN bytes; q (at most 200 bytes) has at most
 * 100 words. */
#define LOOKUP_WORD_LEN  512
#define LOOKUP_WORDS_MAX 100
/* A name is compared by its key (personkey.h: without dots, zero-width joiners or case, a
 * nukta either way), each query word's key against the stored name's, computed once a row
 * (the CTE is materialized: as a plain subquery SQLite would compute it again for each
 * word's LIKE). */
/* Adds the row's columns to o; 0 or REINT_ENOMEM. The values were checked as UTF-8 at
 * intake. */
static int lookup__columns(json_t *o, int kind, const uint8_t *row, size_t len)
{
    const char *const *cols = field_columns(kind);
    for (size_t i = 0; cols && cols[i]; i++) {
        const char *s;
        size_t n;
        json_t *v = localrow_get(row, len, i, &s, &n) ? json_stringn(s, n) : json_null();
        if (v == NULL || json_object_set_new(o, cols[i], v) != 0)
            return REINT_ENOMEM;
    }
    return 0;
}

/* The row of a statement's current result: column 0 the fields, 1 updated_ms, 2 the clerk, 3
 * the version. NULL when out of memory. The version goes as a decimal string (above 2^53,
 * where the pages' numbers lose digits): a correction sends it back in If-Match. */
static json_t *lookup__row(sqlite3_stmt *st, int kind)
{
    json_t *o = json_object();
    const unsigned char *clerk = sqlite3_column_text(st, 2);
    char version[24];
    snprintf(version, sizeof(version), "%llu", (unsigned long long)sqlite3_column_int64(st, 3));
    if (o == NULL ||
        lookup__columns(o, kind, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0)) !=
            0 ||
        json_object_set_new(o, "_updated_ms", json_integer(sqlite3_column_int64(st, 1))) != 0 ||
        json_object_set_new(o, "_clerk", clerk ? json_string((const char *)clerk) : json_null()) !=
            0 ||
        json_object_set_new(o, "_version", json_string(version)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends every result row of st (bound by the caller) to arr, at most max (0: all); *more
 * says whether one more was there. Returns 0, REINT_EDB or REINT_ENOMEM; st is reset. */
static int lookup__rows(sqlite3 *db, sqlite3_stmt *st, int kind, json_t *arr, size_t max, int *more)
{
    int step, rc = 0;
    size_t n = 0;
    if (more)
        *more = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (max && n == max) {
            if (more)
                *more = 1;
            break;
        }
        json_t *o = lookup__row(st, kind);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            rc = REINT_ENOMEM;
            break;
        }
        n++;
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW) {
        log_error("lookup: the store failed: %s", sqlite3_errmsg(db));
        rc = REINT_EDB;
    }
    sqlite3_reset(st);
    return rc;
}

/* "%q%" for LIKE ... ESCAPE '\\' of q's first qlen bytes, into out; the digits of q alone into
 * digits ("" when q has none, or has anything but digits and phone punctuation). */
static void lookup__pattern(const char *q, size_t qlen, char *out, size_t outlen, char *digits,
                            size_t dlen)
{
    size_t o = 0, d = 0;
    int phone_like = 1;
    out[o++] = '%';
    for (const char *p = q, *end = q + qlen; p < end && o + 3 < outlen; p++) {
        const unsigned char *u = (const unsigned char *)p;
        char ch = *p;
        /* A Devanagari digit (as a Nepali keyboard types it) is its ASCII, as phones and the
         * pages' numbers are stored. */
        if (end - p >= 3 && u[0] == 0xE0 && u[1] == 0xA5 && u[2] >= 0xA6 && u[2] <= 0xAF) {
            ch = (char)('0' + (u[2] - 0xA6));
            p += 2;
        }
        if (ch == '%' || ch == '_' || ch == '\\')
            out[o++] = '\\';
        out[o++] = ch;
        if (ch >= '0' && ch <= '9') {
            if (d + 1 < dlen)
                digits[d++] = ch;
        } else if (!strchr(" +-()/.", ch)) {
            phone_like = 0;
        }
    }
    out[o++] = '%';
    out[o] = '\0';
    if (digits)
        digits[phone_like ? d : 0] = '\0';
}

/* The words of q (split at spaces, tabs and commas), each as a LIKE pattern into
 * words[0..n). Returns how many, at most n: the words past n are not looked for. */
static size_t lookup__words(const char *q, char (*words)[LOOKUP_WORD_LEN], size_t n)
{
    static const char seps[] = " \t,";
    size_t k = 0;
    for (const char *p = q + strspn(q, seps); *p && k < n; p += strspn(p, seps)) {
        size_t len = strcspn(p, seps);
        char word[LOOKUP_WORD_LEN];
        size_t w = personkey(PERSONKEY_NAME, p, len, word, sizeof(word));
        p += len;
        if (w > 0)
            lookup__pattern(word, w, words[k++], LOOKUP_WORD_LEN, NULL, 0);
    }
    return k;
}

int lookup_search(intake *in, const char *q, size_t limit, json_t **out)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    char pat[256], digits[64], dpat[80];
    int more = 0, rc = REINT_ENOMEM;
    json_t *arr = NULL;
    sqlite3_stmt *st = NULL;
    char(*words)[LOOKUP_WORD_LEN] = malloc(LOOKUP_WORDS_MAX * sizeof(*words));
    *out = NULL;
    if (words == NULL)
        return REINT_ENOMEM;
    if (limit == 0 || limit > LOOKUP_SEARCH_MAX)
        limit = LOOKUP_SEARCH_MAX;
    /* Spaces and commas alone are no query: every person, as for an empty one (a review: " "
     * found the names with a space, "," nobody). */
    size_t nwords = lookup__words(q, words, LOOKUP_WORDS_MAX);
    if (nwords == 0)
        q = "";
    lookup__pattern(q, strlen(q), pat, sizeof(pat), digits, sizeof(digits));
    snprintf(dpat, sizeof(dpat), "%%%s%%", digits);
    /* Phone and citizenship numbers are also compared by their digits alone, so that
     * "9841 23" finds "+977-984-123..." and "2701751234" finds "27-01-75-1234" (the attack on
     * the clerk's pages: a number typed without its dashes found nobody). A name is found by
     * its words in any order: a clerk types the surname first as often as not (the attack
     * again: "Thapa Sita" found nobody), each word one more LIKE (?7, ?8, ...). A
     * municipality's persons are a few thousand: a scan is quick. */
    sbuf b;
    sbuf_init(&b, 1024 + LOOKUP_WORDS_MAX * 64);
    if (nwords)
        sbuf_puts(&b, "WITH p AS MATERIALIZED (SELECT local_id, fields, updated_ms, clerk,"
                      " version, person_key(1, local_field(fields, ?2)) AS nk FROM records WHERE"
                      " kind = 1 AND live = 1) SELECT fields, updated_ms, clerk, version FROM p"
                      " WHERE (?1 = '%%' OR local_id LIKE ?1 ESCAPE '\\'");
    else /* no name to compare (?2 unused) */
        sbuf_puts(&b, "SELECT fields, updated_ms, clerk, version FROM records WHERE kind = 1 AND"
                      " live = 1 AND (?1 = '%%' OR local_id LIKE ?1 ESCAPE '\\'");
    if (nwords) {
        sbuf_puts(&b, " OR (1");
        for (size_t i = 0; i < nwords; i++)
            sbuf_printf(&b, " AND nk LIKE ?%zu ESCAPE '\\'", 7 + i);
        sbuf_puts(&b, ")");
    }
    sbuf_puts(&b,
              " OR local_field(fields, ?3) LIKE ?1 ESCAPE '\\'"
              " OR local_field(fields, ?4) LIKE ?1 ESCAPE '\\'"
              " OR (?5 <> '%%' AND (replace(replace(replace(replace(replace(replace("
              "local_field(fields, ?3), ' ', ''), '-', ''), '+', ''), '(', ''), ')', ''), '/', '')"
              " LIKE ?5 OR replace(replace(replace(replace(local_field(fields, ?4), ' ', ''), '-',"
              " ''), '/', ''), '.', '') LIKE ?5)))"
              " ORDER BY updated_ms DESC, local_id LIMIT ?6");
    if (b.failed || (st = store_prepare(db, b.p)) == NULL) {
        rc = REINT_EDB;
        goto out;
    }
    int bound = sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC) == SQLITE_OK &&
                sqlite3_bind_int(st, 2, FIELD_PERSON_FULL_NAME) == SQLITE_OK &&
                sqlite3_bind_int(st, 3, FIELD_PERSON_PHONE) == SQLITE_OK &&
                sqlite3_bind_int(st, 4, FIELD_PERSON_CITIZENSHIP) == SQLITE_OK &&
                sqlite3_bind_text(st, 5, dpat, -1, SQLITE_STATIC) == SQLITE_OK &&
                sqlite3_bind_int64(st, 6, (sqlite3_int64)limit + 1) == SQLITE_OK;
    for (size_t i = 0; bound && i < nwords; i++)
        bound = sqlite3_bind_text(st, 7 + (int)i, words[i], -1, SQLITE_STATIC) == SQLITE_OK;
    if (!bound) {
        rc = REINT_EDB;
        goto out;
    }
    arr = json_array();
    if (arr == NULL)
        goto out;
    if ((rc = lookup__rows(db, st, INTAKE_PERSON, arr, limit, &more)) != 0)
        goto out;
    *out = json_pack("{s:O,s:b}", "persons", arr, "more", more);
    rc = *out ? 0 : REINT_ENOMEM;
out:
    if (rc == REINT_EDB)
        log_error("lookup: the store failed: %s", sqlite3_errmsg(db));
    json_decref(arr);
    sqlite3_finalize(st);
    sbuf_free(&b);
    free(words);
    return rc;
}

/* Rows of kind whose column col equals value, the latest date (column dcol) first. */
static int lookup__by_column(sqlite3 *db, int kind, int col, const char *value, int dcol,
                             json_t **arr)
{
    sqlite3_stmt *st = store_prepare(
        db,
        "SELECT fields, updated_ms, clerk, version FROM records WHERE kind = ?1 AND live = 1 AND"
        " local_field(fields, ?2) = ?3 ORDER BY local_field(fields, ?4) DESC, local_id");
    int rc = REINT_EDB;
    *arr = NULL;
    if (st == NULL)
        return REINT_EDB;
    if (sqlite3_bind_int(st, 1, kind) == SQLITE_OK && sqlite3_bind_int(st, 2, col) == SQLITE_OK &&
        sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int(st, 4, dcol) == SQLITE_OK) {
        *arr = json_array();
        rc = *arr ? lookup__rows(db, st, kind, *arr, 0, NULL) : REINT_ENOMEM;
    } else {
        log_error("lookup: the store failed: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(*arr);
        *arr = NULL;
    }
    return rc;
}

/* The live row of (kind, local_id) as JSON into *row. */
static int lookup__one(sqlite3 *db, int kind, const char *local_id, json_t **row)
{
    sqlite3_stmt *st = store_prepare(db, "SELECT fields, updated_ms, clerk, version FROM records"
                                         " WHERE kind = ?1 AND local_id = ?2 AND live = 1");
    int rc = REINT_EDB, step;
    *row = NULL;
    if (st == NULL)
        return REINT_EDB;
    if (sqlite3_bind_int(st, 1, kind) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, local_id, -1, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *row = lookup__row(st, kind);
        rc = *row ? 0 : REINT_ENOMEM;
    } else if (step == SQLITE_DONE) {
        rc = REINT_ENOTFOUND;
    }
out:
    if (rc == REINT_EDB)
        log_error("lookup: the store failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int lookup_row(intake *in, int kind, const char *local_id, json_t **out)
{
    json_t *row = NULL;
    *out = NULL;
    if (kind < INTAKE_PERSON || kind > INTAKE_ENTERPRISE)
        return REINT_ENOTFOUND;
    int rc = lookup__one(outbox_db(intake_outbox(in)), kind, local_id, &row);
    if (rc != 0)
        return rc;
    *out = json_pack("{s:o}", "row", row);
    return *out ? 0 : REINT_ENOMEM;
}

int lookup_duplicates(intake *in, const char *local_id, json_t **out)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    *out = NULL;
    /* The keys of local_id's number, phone and name (personkey.h), then one scan of the
     * others: a number kept only from 4 characters, a phone from 7 digits, and a name
     * compared only where the phone is the same. A municipality's persons are a few
     * thousand. */
    sqlite3_stmt *mine = store_prepare(
        db, "SELECT person_key(3, local_field(fields, ?2)), person_key(2, local_field(fields, ?3)),"
            " person_key(1, local_field(fields, ?4)) FROM records WHERE kind = 1 AND live = 1"
            " AND local_id = ?1");
    sqlite3_stmt *st = store_prepare(
        db, "SELECT local_id, ?5 <> '' AND person_key(3, local_field(fields, ?2)) = ?5 FROM records"
            " WHERE kind = 1 AND live = 1 AND local_id <> ?1 AND ((?5 <> '' AND person_key(3,"
            " local_field(fields, ?2)) = ?5) OR (?6 <> '' AND ?7 <> '' AND person_key(2,"
            " local_field(fields, ?3)) = ?6 AND person_key(1, local_field(fields, ?4)) = ?7))"
            " ORDER BY local_id LIMIT 20");
    json_t *arr = json_array();
    int rc = mine && st ? (arr ? 0 : REINT_ENOMEM) : REINT_EDB, step = SQLITE_DONE;
    for (int i = 0; rc == 0 && i < 2; i++) {
        sqlite3_stmt *x = i ? st : mine;
        if (sqlite3_bind_text(x, 1, local_id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int(x, 2, FIELD_PERSON_CITIZENSHIP) != SQLITE_OK ||
            sqlite3_bind_int(x, 3, FIELD_PERSON_PHONE) != SQLITE_OK ||
            sqlite3_bind_int(x, 4, FIELD_PERSON_FULL_NAME) != SQLITE_OK)
            rc = REINT_EDB;
    }
    if (rc == 0 && (step = sqlite3_step(mine)) == SQLITE_ROW) {
        const char *cz = (const char *)sqlite3_column_text(mine, 0);
        const char *ph = (const char *)sqlite3_column_text(mine, 1);
        const char *nm = (const char *)sqlite3_column_text(mine, 2);
        if (sqlite3_bind_text(st, 5, cz && strlen(cz) >= 4 ? cz : "", -1, SQLITE_TRANSIENT) !=
                SQLITE_OK ||
            sqlite3_bind_text(st, 6, ph && strlen(ph) >= 7 ? ph : "", -1, SQLITE_TRANSIENT) !=
                SQLITE_OK ||
            sqlite3_bind_text(st, 7, nm ? nm : "", -1, SQLITE_TRANSIENT) != SQLITE_OK)
            rc = REINT_EDB;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *o =
                json_pack("{s:s,s:s}", "local_id", (const char *)sqlite3_column_text(st, 0), "same",
                          sqlite3_column_int(st, 1) ? "citizenship_no" : "name_phone");
            if (o == NULL || json_array_append_new(arr, o) != 0)
                rc = REINT_ENOMEM;
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = REINT_EDB;
    } else if (rc == 0 && step != SQLITE_DONE) {
        rc = REINT_EDB; /* not live (SQLITE_DONE): no likeness */
    }
    sqlite3_finalize(mine);
    sqlite3_finalize(st);
    if (rc == 0)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int lookup_import_duplicates(intake *in, int64_t since_ms, const char *clerk, json_t **out,
                             int *more)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    sqlite3_stmt *keys = NULL, *st = NULL;
    json_t *arr = json_array();
    int rc = arr ? 0 : REINT_ENOMEM, step = SQLITE_DONE, n = 0;
    *out = NULL;
    *more = 0;
    /* Each person's keys once, into a table of this connection's own, indexed: the same
     * join over a materialized CTE scanned it once a person (7 s for 20,000 persons). */
    if (rc == 0 && store_exec(db, "CREATE TEMP TABLE import_keys(local_id TEXT NOT NULL,"
                                  " mine INTEGER NOT NULL, c TEXT, p TEXT, n TEXT)") != 0)
        rc = REINT_EDB;
    if (rc == 0) {
        keys = store_prepare(
            db, "INSERT INTO temp.import_keys SELECT local_id, updated_ms >= ?1 AND clerk = ?2,"
                " person_key(3, local_field(fields, ?3)), person_key(2, local_field(fields, ?4)),"
                " person_key(1, local_field(fields, ?5)) FROM records WHERE kind = 1 AND"
                " live = 1");
        if (keys == NULL || sqlite3_bind_int64(keys, 1, since_ms) != SQLITE_OK ||
            sqlite3_bind_text(keys, 2, clerk, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int(keys, 3, FIELD_PERSON_CITIZENSHIP) != SQLITE_OK ||
            sqlite3_bind_int(keys, 4, FIELD_PERSON_PHONE) != SQLITE_OK ||
            sqlite3_bind_int(keys, 5, FIELD_PERSON_FULL_NAME) != SQLITE_OK ||
            store_step_done(db, keys) != 0 ||
            store_exec(db, "CREATE INDEX temp.import_keys_c ON import_keys(c);"
                           "CREATE INDEX temp.import_keys_pn ON import_keys(p, n)") != 0)
            rc = REINT_EDB;
    }
    if (rc == 0) {
        /* A pair of two rows of the import once; a number kept from 4 characters, a phone
         * from 7 digits and with a name, as lookup_duplicates keeps them. */
        st = store_prepare(
            db, "SELECT x, y, min(s) FROM (SELECT a.local_id AS x, b.local_id AS y, 0 AS s FROM"
                " temp.import_keys a JOIN temp.import_keys b ON b.c = a.c WHERE a.mine AND"
                " length(a.c) >= 4 AND b.local_id <> a.local_id AND (NOT b.mine OR b.local_id >"
                " a.local_id) UNION ALL SELECT a.local_id, b.local_id, 1 FROM temp.import_keys a"
                " JOIN temp.import_keys b ON b.p = a.p AND b.n = a.n WHERE a.mine AND"
                " length(a.p) >= 7 AND a.n <> '' AND b.local_id <> a.local_id AND (NOT b.mine OR"
                " b.local_id > a.local_id)) GROUP BY x, y ORDER BY x, y LIMIT ?1");
        if (st == NULL || sqlite3_bind_int(st, 1, LOOKUP_IMPORT_DUPS + 1) != SQLITE_OK)
            rc = REINT_EDB;
    }
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (++n > LOOKUP_IMPORT_DUPS) {
            *more = 1;
            continue;
        }
        json_t *o = json_pack("{s:s,s:s,s:s}", "local_id", (const char *)sqlite3_column_text(st, 0),
                              "like", (const char *)sqlite3_column_text(st, 1), "same",
                              sqlite3_column_int(st, 2) ? "name_phone" : "citizenship_no");
        if (o == NULL || json_array_append_new(arr, o) != 0)
            rc = REINT_ENOMEM;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = REINT_EDB;
    if (rc == REINT_EDB)
        log_error("lookup: an import's duplicates could not be read: %s", sqlite3_errmsg(db));
    sqlite3_finalize(keys);
    sqlite3_finalize(st);
    store_exec(db, "DROP TABLE IF EXISTS temp.import_keys");
    if (rc == 0)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int lookup_person(intake *in, const char *local_id, json_t **out)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    json_t *person = NULL, *services = NULL, *enterprises = NULL;
    *out = NULL;
    int rc = lookup__one(db, INTAKE_PERSON, local_id, &person);
    if (rc == 0)
        rc = lookup__by_column(db, INTAKE_SERVICE, FIELD_SERVICE_PERSON, local_id,
                               FIELD_SERVICE_DATE, &services);
    if (rc == 0)
        rc = lookup__by_column(db, INTAKE_ENTERPRISE, FIELD_ENTERPRISE_OWNER, local_id,
                               FIELD_ENTERPRISE_DATE, &enterprises);
    if (rc == 0) {
        *out = json_pack("{s:O,s:O,s:O}", "person", person, "services", services, "enterprises",
                         enterprises);
        if (*out == NULL)
            rc = REINT_ENOMEM;
    }
    json_decref(person);
    json_decref(services);
    json_decref(enterprises);
    return rc;
}

int lookup_availability(intake *in, json_t **out)
{
    sqlite3 *db = outbox_db(intake_outbox(in));
    json_t *arr = NULL;
    *out = NULL;
    sqlite3_stmt *st = store_prepare(db, "SELECT fields, updated_ms, clerk, version FROM records"
                                         " WHERE kind = 4 AND live = 1 ORDER BY local_id");
    if (st == NULL)
        return REINT_EDB;
    arr = json_array();
    int rc = arr ? lookup__rows(db, st, INTAKE_AVAILABILITY, arr, 0, NULL) : REINT_ENOMEM;
    sqlite3_finalize(st);
    if (rc == 0 && (*out = json_pack("{s:O}", "availability", arr)) == NULL)
        rc = REINT_ENOMEM;
    json_decref(arr);
    return rc;
}

int lookup_dead_letters(intake *in, size_t limit, json_t **out)
{
    static const char *const kinds[] = {
        "", "persons", "services", "enterprises", "availability", "month_close"};
    sqlite3 *db = outbox_db(intake_outbox(in));
    json_t *arr = json_array();
    int step, rc = 0;
    *out = NULL;
    sqlite3_stmt *st = store_prepare(
        db, "SELECT r.kind, r.local_id, d.field, d.reason, d.at_ms FROM dead_letters d"
            " LEFT JOIN records r ON r.id = d.id ORDER BY d.at_ms DESC, d.seq DESC LIMIT ?1");
    if (st == NULL || arr == NULL ||
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(limit ? limit : 100)) != SQLITE_OK) {
        rc = arr ? REINT_EDB : REINT_ENOMEM;
        goto out;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int kind = sqlite3_column_int(st, 0);
        const unsigned char *lid = sqlite3_column_text(st, 1), *field = sqlite3_column_text(st, 2),
                            *reason = sqlite3_column_text(st, 3);
        json_t *o = json_pack(
            "{s:s,s:o,s:s,s:s,s:I}", "kind", kind >= 1 && kind <= 5 ? kinds[kind] : "unknown",
            "local_id", lid ? json_string((const char *)lid) : json_null(), "field",
            field ? (const char *)field : "", "reason", reason ? (const char *)reason : "", "at_ms",
            (json_int_t)sqlite3_column_int64(st, 4));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            rc = REINT_ENOMEM;
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = REINT_EDB;
    if (rc == 0 && (*out = json_pack("{s:O}", "dead_letters", arr)) == NULL)
        rc = REINT_ENOMEM;
out:
    if (rc == REINT_EDB)
        log_error("lookup: the store failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    json_decref(arr);
    return rc;
}
