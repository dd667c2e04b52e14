"""Checks the system tests' HTTP answers against docs/openapi/*.json in-process, with Debian's
python3-jsonschema: the schema of the operation (path template, method) and status code that
answered, for JSON bodies. An answer whose route, status or body the document does not describe
fails the test that received it."""
import copy
import functools
import json
import os
import re

import jsonschema

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "docs", "openapi")


def _to_json_schema(node):
    """OpenAPI 3.0 schema objects as JSON Schema: nullable becomes a union with null."""
    if isinstance(node, list):
        return [_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.lru_cache(maxsize=None)
def document(name):
    with open(os.path.join(DOCS, name + ".json")) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _routes(name):
    """[(compiled path regex, path template)] of a document, literal paths first."""
    out = []
    for template in document(name)["paths"]:
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        out.append((re.compile(rx), template))
    out.sort(key=lambda r: "{" in r[1])
    return out


ERROR = {"$ref": "#/components/schemas/Error"}


def _template(name, path):
    bare = path.split("?", 1)[0]
    return bare, next((t for rx, t in _routes(name) if rx.match(bare)), None)


def check(name, method, path, status, body):
    """Asserts that body (parsed JSON) is what document name says path answers with status."""
    doc = document(name)
    bare, template = _template(name, path)
    if template is None and status in (401, 404, 429):
        # A path the API does not have: its 404 is the one error object of every route, and so
        # are the 401 and 429 of an API that checks the token before the route (the hub's).
        return _validate(name, ERROR, body, method, bare, status)
    assert template, "%s %s: no path of docs/openapi/%s.json matches" % (method, bare, name)
    op = doc["paths"][template].get(method.lower())
    if op is None and status == 405:
        # A method the path does not have: answered with the error object (and Allow).
        return _validate(name, ERROR, body, method, template, status)
    assert op, "%s %s: the document has no %s operation" % (method, template, method)
    resp = op["responses"].get(str(status)) or op["responses"].get("default")
    assert resp, "%s %s answered %d, which the document does not list" % (method, template,
                                                                           status)
    schema = resp.get("content", {}).get("application/json", {}).get("schema")
    assert schema is not None, "%s %s %d: JSON answered where none is described" % (
        method, template, status)
    _validate(name, schema, body, method, template, status)


def answer(name, method, path, status, text):
    """The answer text of method path as the tests use it: JSON (an object) parsed and checked
    by check(), anything else returned as it is (CSV, ADX, plain text). The one place every
    test client of an API passes its answers through."""
    if not text.startswith("{"):
        return text
    parsed = json.loads(text)
    check(name, method, path, status, parsed)
    return parsed


def check_request(name, method, path, status, body):
    """Asserts that a request body (parsed JSON) the API accepted (status below 300) is what
    the document's requestBody allows: a document stricter than the server would mislead its
    clients. Refused bodies are not checked (tests send wrong ones on purpose)."""
    if status >= 300:
        return
    _, template = _template(name, path)
    assert template, "%s %s: no path of docs/openapi/%s.json matches" % (method, path, name)
    op = document(name)["paths"][template].get(method.lower())
    assert op and "requestBody" in op, "%s %s: no requestBody described" % (method, template)
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    _validate(name, schema, body, method, template, "request")


def _validate(name, schema, body, method, template, status):
    doc = document(name)
    full = _to_json_schema(copy.deepcopy({"components": doc.get("components", {}), **schema}))
    try:
        jsonschema.validate(body, full)
    except jsonschema.ValidationError as e:
        raise AssertionError("%s %s %s does not match docs/openapi/%s.json: %s at %s" % (
            method, template, status, name, e.message, list(e.absolute_path))) from None
