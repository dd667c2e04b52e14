/* The token files of the node and the hub (common/tokens.c): roles named when a token is
 * issued, files of "name sha256hex" lines (written before roles, and the node's) read as
 * officers, a bad role refused with its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tokens.h"

typedef struct fx {
    char dir[64], path[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_tokens.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/tokens", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void bearer(const char *token, char *out, size_t len)
{
    snprintf(out, len, "Bearer %s", token);
}

static void test_tokens_roles_are_named_at_issue(void **state)
{
    fx *f = *state;
    char err[256], t1[128], t2[128], t3[128], h[160];
    enum tokens_role role = TOKENS_ADMIN;
    tokens_table *t = NULL;
    assert_int_equal(tokens_issue(f->path, "olga", t1, sizeof(t1), err, sizeof(err)), 0);
    assert_int_equal(
        tokens_issue_role(f->path, "rita", TOKENS_REVIEWER, t2, sizeof(t2), err, sizeof(err)), 0);
    assert_int_equal(
        tokens_issue_role(f->path, "adam", TOKENS_ADMIN, t3, sizeof(t3), err, sizeof(err)), 0);
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), 0);
    bearer(t1, h, sizeof(h));
    assert_string_equal(tokens_check_role(t, h, &role), "olga");
    assert_int_equal(role, TOKENS_OFFICER);
    bearer(t2, h, sizeof(h));
    assert_string_equal(tokens_check_role(t, h, &role), "rita");
    assert_int_equal(role, TOKENS_REVIEWER);
    bearer(t3, h, sizeof(h));
    assert_string_equal(tokens_check_role(t, h, &role), "adam");
    assert_int_equal(role, TOKENS_ADMIN);
    assert_string_equal(tokens_check(t, h), "adam");
    assert_null(tokens_check_role(t, "Bearer nope", &role));
    tokens_free(t);
    /* An officer's line has no role: an older binary (and the node) still reads it. */
    FILE *fp = fopen(f->path, "r");
    char line[256];
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_int_equal(strlen(line), strlen("olga ") + 64 + 1);
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_non_null(strstr(line, " reviewer\n"));
    fclose(fp);
}

static void test_tokens_files_without_roles_are_officers(void **state)
{
    fx *f = *state;
    char err[256], hash[65], h[64];
    enum tokens_role role = TOKENS_ADMIN;
    tokens_table *t = NULL;
    char text[512];
    assert_int_equal(tokens_hash_hex("s3cret", hash), 0);
    snprintf(text, sizeof(text), "# clerks\nclerk-1 %s\r\n\nboss %s admin \n", hash, hash);
    write_file(f->path, text);
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), 0);
    bearer("s3cret", h, sizeof(h));
    /* The first line holding the hash names the token. */
    assert_string_equal(tokens_check_role(t, h, &role), "clerk-1");
    assert_int_equal(role, TOKENS_OFFICER);
    tokens_free(t);
}

static void test_tokens_bad_role_is_refused_with_its_line(void **state)
{
    fx *f = *state;
    char err[256], hash[65], text[512];
    tokens_table *t = NULL;
    enum tokens_role role;
    assert_int_equal(tokens_hash_hex("x", hash), 0);
    snprintf(text, sizeof(text), "a %s\nb %s emperor\n", hash, hash);
    write_file(f->path, text);
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), REINT_EINVAL);
    assert_non_null(strstr(err, "line 2: the role is not officer, reviewer or admin"));
    snprintf(text, sizeof(text), "a %sadmin\n", hash);
    write_file(f->path, text);
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), REINT_EINVAL);
    snprintf(text, sizeof(text), "a %s admin extra\n", hash);
    write_file(f->path, text);
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), REINT_EINVAL);
    assert_int_equal(tokens_role_parse("reviewer", &role), 0);
    assert_int_equal(role, TOKENS_REVIEWER);
    assert_int_equal(tokens_role_parse("Admin", &role), REINT_EINVAL);
    assert_string_equal(tokens_role_name(TOKENS_ADMIN), "admin");
}

/* Loads text (written to the fixture's file) into a table. */
static tokens_table *load_text(fx *f, const char *text)
{
    char err[256];
    tokens_table *t = NULL;
    write_file(f->path, text);
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), 0);
    return t;
}

/* Sessions go on after a change of the file only when every token before is still there,
 * with its name and role: added lines keep them, a withdrawn, renamed or re-roled one ends
 * them. */
static void test_tokens_only_added_is_true_for_additions_alone(void **state)
{
    fx *f = *state;
    char ha[65], hb[65], text[512];
    assert_int_equal(tokens_hash_hex("a-token", ha), 0);
    assert_int_equal(tokens_hash_hex("b-token", hb), 0);
    snprintf(text, sizeof(text), "asha %s\nravi %s reviewer\n", ha, hb);
    tokens_table *before = load_text(f, text);
    snprintf(text, sizeof(text), "asha %s\nravi %s reviewer\nsita %s\n", ha, hb, ha);
    tokens_table *added = load_text(f, text);
    snprintf(text, sizeof(text), "asha %s\n", ha);
    tokens_table *removed = load_text(f, text);
    snprintf(text, sizeof(text), "asha %s\nravi %s admin\n", ha, hb);
    tokens_table *reroled = load_text(f, text);
    snprintf(text, sizeof(text), "asha %s\nravi2 %s reviewer\n", ha, hb);
    tokens_table *renamed = load_text(f, text);
    assert_int_equal(tokens_only_added(before, added), 1);
    assert_int_equal(tokens_only_added(before, before), 1);
    assert_int_equal(tokens_only_added(before, removed), 0);
    assert_int_equal(tokens_only_added(before, reroled), 0);
    assert_int_equal(tokens_only_added(before, renamed), 0);
    assert_int_equal(tokens_only_added(added, before), 0);
    assert_int_equal(tokens_only_added(NULL, before), 1);
    assert_int_equal(tokens_only_added(before, NULL), 0);
    tokens_free(before);
    tokens_free(added);
    tokens_free(removed);
    tokens_free(reroled);
    tokens_free(renamed);
}

static char *read_text(const char *path)
{
    static char buf[4096];
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* A rotation keeps every other line as written (comments too), drops each of the name's
 * tokens, and gives the new one their role (the one given, when they had several); a name
 * without a token, or a file that does not parse, is left as it was. */
static void test_tokens_replace_rewrites_only_the_names_lines(void **state)
{
    fx *f = *state;
    char err[300], tok[128], h[160], before[4096];
    size_t removed = 9;
    const char *hx = "0000000000000000000000000000000000000000000000000000000000000000";
    char text[1024];
    snprintf(text, sizeof(text),
             "# the office\nolga %s\nrita %s reviewer\n\nolga %s admin\nravi %s\n", hx, hx, hx, hx);
    write_file(f->path, text);
    /* Two roles: which one the new token gets is said, or nothing is written. */
    assert_int_equal(tokens_replace(f->path, "olga", 1, NULL, NULL, tok, sizeof(tok), &removed, err,
                                    sizeof(err)),
                     REINT_EINVAL);
    assert_non_null(strstr(err, "olga has tokens of several roles (officer, admin)"));
    assert_string_equal(read_text(f->path), text);
    enum tokens_role admin = TOKENS_ADMIN, used = TOKENS_OFFICER;
    assert_int_equal(tokens_replace(f->path, "olga", 1, &admin, &used, tok, sizeof(tok), &removed,
                                    err, sizeof(err)),
                     0);
    assert_int_equal(used, TOKENS_ADMIN);
    assert_int_equal(removed, 2);
    const char *got = read_text(f->path);
    char want[1024];
    snprintf(want, sizeof(want), "# the office\nrita %s reviewer\n\nravi %s\n", hx, hx);
    assert_int_equal(strncmp(got, want, strlen(want)), 0);
    char hash[65];
    assert_int_equal(tokens_hash_hex(tok, hash), 0);
    char line[160];
    snprintf(line, sizeof(line), "olga %s admin\n", hash);
    assert_string_equal(got + strlen(want), line);
    tokens_table *t = NULL;
    enum tokens_role role = TOKENS_OFFICER;
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), 0);
    bearer(tok, h, sizeof(h));
    assert_string_equal(tokens_check_role(t, h, &role), "olga");
    assert_int_equal(role, TOKENS_ADMIN);
    assert_int_equal(tokens_changed(t, f->path), 0);
    /* Withdrawn alone; then a name without a token: nothing written. */
    assert_int_equal(tokens_replace(f->path, "olga", 0, NULL, NULL, tok, sizeof(tok), &removed, err,
                                    sizeof(err)),
                     0);
    assert_int_equal(tokens_changed(t, f->path), 2); /* renamed into place: whole */
    snprintf(before, sizeof(before), "%s", read_text(f->path));
    assert_string_equal(before, want);
    assert_int_equal(tokens_replace(f->path, "olga", 1, NULL, NULL, tok, sizeof(tok), &removed, err,
                                    sizeof(err)),
                     REINT_ENOTFOUND);
    assert_non_null(strstr(err, "holds no token of olga"));
    assert_string_equal(read_text(f->path), before);
    /* Written in place (an editor): changed, and perhaps half-written. */
    tokens_free(t);
    assert_int_equal(tokens_load(&t, f->path, err, sizeof(err)), 0);
    FILE *fp = fopen(f->path, "a");
    assert_non_null(fp);
    fputs("# a note\n", fp);
    fclose(fp);
    assert_int_equal(tokens_changed(t, f->path), 1);
    /* A line that does not parse: refused, naming it, the file as it was. */
    write_file(f->path, "rita 12\nolga 00\n");
    assert_int_equal(tokens_replace(f->path, "olga", 0, NULL, NULL, tok, sizeof(tok), &removed, err,
                                    sizeof(err)),
                     REINT_EMALFORMED);
    assert_non_null(strstr(err, "line 1:"));
    /* Nor is a token added to it: the daemon would not take the file, nor the token. */
    assert_int_equal(tokens_issue(f->path, "newc", tok, sizeof(tok), err, sizeof(err)),
                     REINT_EMALFORMED);
    assert_non_null(strstr(err, "fix the file first"));
    assert_string_equal(read_text(f->path), "rita 12\nolga 00\n");
    tokens_free(t);
}

/* Root rewriting or appending to a tokens file through a link the daemon's user put in its
 * place, or where the rewrite writes first (the review of 4ca1f83): refused, or written
 * beside it, the link's target untouched. */
static void test_tokens_are_never_written_through_a_link(void **state)
{
    fx *f = *state;
    char err[300], tok[128], victim[160], planted[160], text[256];
    size_t removed = 0;
    const char *hx = "0000000000000000000000000000000000000000000000000000000000000000";
    snprintf(victim, sizeof(victim), "%s/victim", f->dir);
    snprintf(text, sizeof(text), "olga %s\n", hx); /* a tokens file: a rewrite would go on */
    write_file(victim, text);
    assert_int_equal(symlink(victim, f->path), 0);
    assert_int_not_equal(tokens_issue(f->path, "olga", tok, sizeof(tok), err, sizeof(err)), 0);
    assert_int_not_equal(tokens_replace(f->path, "olga", 1, NULL, NULL, tok, sizeof(tok), &removed,
                                        err, sizeof(err)),
                         0);
    assert_string_equal(read_text(victim), text);
    /* The file itself, and a link where a rewrite's file of a fixed name would be. */
    unlink(f->path);
    write_file(f->path, text);
    snprintf(planted, sizeof(planted), "%s.new", f->path);
    assert_int_equal(symlink(victim, planted), 0);
    assert_int_equal(tokens_replace(f->path, "olga", 1, NULL, NULL, tok, sizeof(tok), &removed, err,
                                    sizeof(err)),
                     0);
    assert_string_equal(read_text(victim), text);
    struct stat st;
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(planted);
    unlink(victim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tokens_roles_are_named_at_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_files_without_roles_are_officers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tokens_bad_role_is_refused_with_its_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tokens_only_added_is_true_for_additions_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tokens_replace_rewrites_only_the_names_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tokens_are_never_written_through_a_link, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
