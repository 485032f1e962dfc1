// The public API, called from the browser: the same routes and problem types as any client.
// The access token lives in this module's memory only: never in storage, never in a URL, and
// sent only to this gateway (same origin) in the Authorization header.

import { clientAssertion } from "./crypto.js";

let session = null; // {participant, token, expires, signer, roles}

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function current() {
  return session;
}

export function signOut() {
  session = null;
}

async function problemOf(response) {
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (body && typeof body === "object") {
    if (body.error) {
      // OAuth 2.0 errors (RFC 6749 §5.2) from the token endpoint
      return { type: `oauth:${body.error}`, title: body.error, detail: body.error_description || "" };
    }
    return body;
  }
  return { type: "about:blank", title: response.statusText, detail: text.slice(0, 300) };
}

export async function call(method, path, { body, auth = true, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (auth && session) h.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiProblem(0, { type: "network", title: "network", detail: String(err) });
  }
  if (!response.ok) throw new ApiProblem(response.status, await problemOf(response));
  return response.json();
}

export const get = (path, opts) => call("GET", path, opts);
export const post = (path, body, opts = {}) => call("POST", path, { ...opts, body });

// The API's lists page by `offset` and `limit` (each route its own largest `limit`); a page
// shorter than `limit` is the last. The portal's own address may ask for smaller pages
// (`/portal/?page_size=2`), so that paging is seen to work on a small gateway.
const askedPageSize = Number.parseInt(new URLSearchParams(location.search).get("page_size") ?? "", 10);

// Every item of the list at `path` (which may carry its own filters), fetched page by page up
// to the last. An item that a newer one pushed onto the next page is kept once (by its id).
export async function all(path, { limit = 100 } = {}) {
  const size = askedPageSize > 0 ? Math.min(limit, askedPageSize) : limit;
  const joiner = path.includes("?") ? "&" : "?";
  const items = [];
  const seen = new Set();
  for (let offset = 0; ; ) {
    const page = await get(`${path}${joiner}offset=${offset}&limit=${size}`);
    for (const item of page) {
      if (item.id === undefined || !seen.has(item.id)) items.push(item);
      if (item.id !== undefined) seen.add(item.id);
    }
    offset += page.length;
    if (page.length < size) return items;
  }
}

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

// Sign in: the assertion is signed here with the participant's key; only it is sent.
export async function signIn(participant, signer) {
  const meta = await get("/.well-known/oauth-authorization-server", { auth: false });
  const assertion = await clientAssertion(signer, participant, meta.token_endpoint);
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: participant,
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: assertion,
  });
  let response;
  try {
    response = await fetch(meta.token_endpoint.replace(/^https?:\/\/[^/]+/, ""), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: form.toString(),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiProblem(0, { type: "network", title: "network", detail: String(err) });
  }
  if (!response.ok) throw new ApiProblem(response.status, await problemOf(response));
  const token = await response.json();
  const claims = claimsOf(token.access_token);
  session = {
    participant,
    token: token.access_token,
    expires: Date.now() + (token.expires_in ?? 900) * 1000,
    signer,
    roles: claims.roles ?? [],
  };
  try {
    const me = await get(`/participants/${encodeURIComponent(participant)}`);
    if (Array.isArray(me.roles)) session.roles = me.roles;
  } catch {
    // the roles are shown only; the gateway decides on every call
  }
  return session;
}
