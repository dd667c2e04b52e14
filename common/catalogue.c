#include "catalogue.h"

#include <stdio.h>
#include <string.h>

static const catalogue_indicator catalogue__v1[] = {
    {"participants_registered",
     "Persons registered in the period",
     "10.7",
     CATALOGUE_DISTINCT,
     {"category", "sex", "age_band", "caste_group", "disability", NULL},
     {"", "category", "sex", "age_band", "caste_group", "disability", "category,sex",
      "sex,age_band", NULL}},
    {"returnees_registered",
     "Returnees registered in the period",
     "10.7",
     CATALOGUE_DISTINCT,
     {"sex", "age_band", "destination_country", NULL},
     {"", "sex", "age_band", "destination_country", "sex,age_band", NULL}},
    {"persons_served",
     "Distinct persons with at least one delivered service",
     "",
     CATALOGUE_DISTINCT,
     {"service_type", "sex", "category", "programme", NULL},
     {"", "service_type", "sex", "category", "programme", "service_type,sex", NULL}},
    {"services_delivered",
     "Delivered services",
     "",
     CATALOGUE_COUNT,
     {"service_type", "sex", "programme", "provider", NULL},
     {"", "service_type", "sex", "programme", "provider", NULL}},
    {"enterprises_supported",
     "Enterprises started or expanded",
     "8.3",
     CATALOGUE_COUNT,
     {"action", "sector", "owner_sex", "owner_category", NULL},
     {"", "action", "sector", "owner_sex", "owner_category", "owner_sex,owner_category", NULL}},
    {"jobs_created",
     "Employees of enterprises supported in the period",
     "8.5",
     CATALOGUE_SUM,
     {"sector", "owner_sex", NULL},
     {"", "sector", "owner_sex", NULL}},
    {"enterprises_active",
     "Supported enterprises active at the period's end (ratio)",
     "",
     CATALOGUE_RATIO,
     {"sector", NULL},
     {"", "sector", NULL}},
    {"seed_funding_npr",
     "Delivered seed funding, NPR",
     "",
     CATALOGUE_SUM,
     {"sex", "category", "programme", NULL},
     {"", "sex", "category", "programme", NULL}},
    {"enterprises_with_loan",
     "Supported enterprises whose owner has a delivered loan (ratio)",
     "9.3.2",
     CATALOGUE_RATIO,
     {"sector", NULL},
     {"", "sector", NULL}},
    {"bank_accounts_opened",
     "Persons with a delivered bank account service",
     "8.10.2",
     CATALOGUE_DISTINCT,
     {"sex", NULL},
     {"", "sex", NULL}},
    {"no_remigration_intention",
     "Returnees intending not to migrate again (ratio)",
     "",
     CATALOGUE_RATIO,
     {"sex", NULL},
     {"", "sex", NULL}},
    {"referrals_pending",
     "Referrals with no delivery within 90 days",
     "",
     CATALOGUE_COUNT,
     {"service_type", NULL},
     {"", "service_type", NULL}},
    {"services_unavailable",
     "Service types referred but offered by no local provider",
     "",
     CATALOGUE_COUNT,
     {"service_type", NULL},
     {"", "service_type", NULL}},
    {"reporting_completeness",
     "Enrolled municipalities that closed the month (ratio)",
     "17.16",
     CATALOGUE_RATIO,
     {NULL},
     {"", NULL}},
    {"reporting_timeliness",
     "Enrolled municipalities that closed the month within 15 days of its end (ratio)",
     "17.16",
     CATALOGUE_RATIO,
     {NULL},
     {"", NULL}},
};

const catalogue_indicator *catalogue_all(size_t *n)
{
    *n = sizeof(catalogue__v1) / sizeof(catalogue__v1[0]);
    return catalogue__v1;
}

const catalogue_indicator *catalogue_find(const char *code)
{
    size_t n;
    const catalogue_indicator *all = catalogue_all(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].code, code) == 0)
            return &all[i];
    return NULL;
}

static int catalogue__dim_index(const catalogue_indicator *ind, const char *name, size_t len)
{
    for (int i = 0; ind->dims[i]; i++)
        if (strlen(ind->dims[i]) == len && strncmp(ind->dims[i], name, len) == 0)
            return i;
    return -1;
}

int catalogue_grouping(const catalogue_indicator *ind, const char *grouping, char *out,
                       size_t outlen)
{
    int idx[2], n = 0;
    const char *p = grouping;
    if (*p == '\0') {
        snprintf(out, outlen, "%s", "");
        return 1;
    }
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 2)
            return 0;
        if ((idx[n++] = catalogue__dim_index(ind, p, len)) < 0)
            return 0;
        p += len + (comma ? 1 : 0);
        if (comma && *p == '\0')
            return 0;
    }
    if (n == 2 && idx[0] == idx[1])
        return 0;
    if (n == 2 && idx[0] > idx[1]) {
        int t = idx[0];
        idx[0] = idx[1];
        idx[1] = t;
    }
    if (n == 1)
        snprintf(out, outlen, "%s", ind->dims[idx[0]]);
    else
        snprintf(out, outlen, "%s,%s", ind->dims[idx[0]], ind->dims[idx[1]]);
    for (int i = 0; ind->groupings[i]; i++)
        if (strcmp(ind->groupings[i], out) == 0)
            return 1;
    return 0;
}
