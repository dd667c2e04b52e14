// The pages' client of the node's JSON API: the same endpoints other programs use, signed in
// with the session cookie (HttpOnly: this script never sees it) and, for every change, the
// session's CSRF token in X-CSRF-Token.
let csrf = null;
let onSignedOut = () => {};

export function setCsrf(token) {
  csrf = token;
}

// f() is called when an answer says the session has ended (401).
export function whenSignedOut(f) {
  onSignedOut = f;
}

async function call(method, path, body, headers) {
  const h = Object.assign({}, headers || {});
  if (method !== "GET" && method !== "HEAD") {
    if (csrf) h["X-CSRF-Token"] = csrf;
  }
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, { method, headers: h, body: payload, credentials: "same-origin",
                            cache: "no-store" });
  } catch (e) {
    return { status: 0, body: { error: String(e), code: "network" } };
  }
  const type = r.headers.get("Content-Type") || "";
  let data = null;
  if (r.status !== 204) {
    data = type.startsWith("application/json") ? await r.json().catch(() => null)
                                               : await r.text();
  }
  if (r.status === 401 && path !== "/v1/session") onSignedOut();
  return { status: r.status, body: data, headers: r.headers };
}

export const api = {
  get: (path) => call("GET", path),
  post: (path, body, headers) => call("POST", path, body, headers),
  put: (path, body, headers) => call("PUT", path, body, headers),
  del: (path) => call("DELETE", path),
};

// A path segment, escaped.
export function seg(s) {
  return encodeURIComponent(s);
}
