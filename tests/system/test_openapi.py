"""The in-process check of the system tests' answers (openapi.py) against docs/openapi/*.json
catches what it is there for: an answer of a route, status or shape the document does not
describe fails, and one it describes passes. No daemon: the answers are written here, in the
shapes the APIs send."""
import pytest

import openapi

APPROVALS = {"period": "BS2083-04", "by": "province", "decisions_shown": False,
             "rows": [{"province": 1, "municipality_months": 2, "contributing": 1, "closed": 1,
                       "approved": 0, "municipalities": 2, "municipalities_approved": 0}],
             "total": {"municipality_months": 2, "contributing": 1, "closed": 1, "approved": 0,
                       "municipalities": 2, "municipalities_approved": 0}}


def test_a_described_answer_passes():
    openapi.check("federal", "GET", "/v1/approvals?period=BS2083-04", 200, APPROVALS)
    openapi.check("hub", "GET", "/v1/nowhere", 404, {"error": "not found"})
    openapi.check("hub", "GET", "/v1/sweeps/3/undo", 405, {"error": "a decision on a sweep is a POST"})
    openapi.check_request("federal", "POST", "/v1/directives", 201,
                          {"title": "t", "text": "x", "effective_from": "2026-07-17"})


@pytest.mark.parametrize("name,method,path,status,body,why", [
    ("federal", "GET", "/v1/approvals", 200, dict(APPROVALS, total={"approved": "0"}),
     "does not match"),
    ("federal", "GET", "/v1/approvals", 200, dict(APPROVALS, extra=1), "does not match"),
    ("federal", "GET", "/v1/approvals", 418, APPROVALS, "does not list"),
    ("federal", "POST", "/v1/approvals", 200, APPROVALS, "no POST operation"),
    ("federal", "GET", "/v2/approvals", 200, APPROVALS, "no path"),
    ("hub", "GET", "/v1/gaps", 200, {"rows": []}, "does not match"),
    ("hub", "POST", "/v1/reviews/10401/BS2083-04", 409, {"error": "x", "review": {}},
     "does not match"),
])
def test_an_undescribed_answer_fails(name, method, path, status, body, why):
    with pytest.raises(AssertionError, match=why):
        openapi.check(name, method, path, status, body)


def test_an_accepted_request_body_the_document_refuses_fails():
    with pytest.raises(AssertionError, match="does not match"):
        openapi.check_request("federal", "POST", "/v1/directives", 201,
                              {"title": "t", "text": "x", "effective_from": "2026-07-17",
                               "colour": "red"})
    # A refused body is not checked: tests send wrong ones on purpose.
    openapi.check_request("federal", "POST", "/v1/directives", 422, {"colour": "red"})
