/* federal-api: the national tier (PostgreSQL, indicators, directives). This build carries
 * only its command-line shell; the service itself is the subject of its own issue, and
 * this program says so rather than pretending to run. */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: federal-api [--config FILE] serve|migrate|token ...\n"
               "\n"
               "The federal tier (PostgreSQL-backed national indicators, open data with\n"
               "disclosure control, signed directives) is not implemented in this build.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    usage(stderr);
    fprintf(stderr, "federal-api: not implemented yet\n");
    return 2;
}
