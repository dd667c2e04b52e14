/* The JSON endpoints the workspace's pages need (web.h), joined to the clerks' API (api.h)
 * with the same checks (a clerk's bearer token, or the session cookie with its CSRF token),
 * usable by any program as well:
 *
 *   POST   /v1/session             sign in: {"token"} or {"clerk", "password"}; 200 with the
 *                                  session (as GET) and its cookie; 401; 429 when limited
 *   GET    /v1/session             {"clerk", "csrf", "expires_ms", "municipality", "calendar",
 *                                  "today", "today_ad", "https", ...}
 *   DELETE /v1/session             sign out (204; the cookie is deleted)
 *   GET    /v1/schema              each kind's columns: type, required, limits, values
 *   POST   /v1/check/<kind>[/<local_id>]   every error of a row, nothing stored:
 *                                  200 {"errors": [...]} (empty: the row would be taken)
 *   GET    /v1/directives          directives in force, with the participants eligible
 *   GET    /v1/dead-letters        records the hub refused, with its reasons
 *   GET    /v1/fiscal-year[?year=Y]  the months of a fiscal year with their checklist
 *   POST   /v1/closes/<YYYY-MM>    closes a month of the node's calendar (200; 422 with code)
 *   POST   /v1/imports/<kind>[?name=FILE]  body: a CSV file; 202 {"id"} (webimport.h)
 *   GET    /v1/imports/<id>        its progress, then its refused rows
 *   GET    /v1/imports/<id>/errors.csv
 *   GET    /v1/export/<kind>       the CSV export (export.h), as a download
 *
 * Failed sign-ins are limited per client address and token prefix or clerk name
 * (limiter.h: API_SIGNIN_FAILURES per API_SIGNIN_WINDOW_S, then 429 with Retry-After); a
 * password's name is blocked whatever password comes next, as passwords are guessable where
 * tokens are not. A password is checked off the loop's thread (scrypt takes 0.1 s). */
#ifndef MUNICIPAL_NODE_WEBAPI_H
#define MUNICIPAL_NODE_WEBAPI_H

#include "http.h"

struct api_ctx;

#define WEBAPI_SIGNIN_FAILURES 5
#define WEBAPI_SIGNIN_WINDOW_S 300
/* Password checks at once at most (each takes 32 MiB for a tenth of a second). */
#define WEBAPI_PASSWORD_CHECKS 2

/* Answers POST /v1/session (no clerk yet). */
void webapi_signin(http_req *r, struct api_ctx *ctx);

/* Answers r and returns 1 when rest (the path after /v1/) is one of the endpoints above;
 * returns 0 without answering otherwise. clerk is the authenticated clerk. */
int webapi_handle(http_req *r, struct api_ctx *ctx, const char *rest, const char *clerk);

#endif
