// In-browser cryptography with WebCrypto only: RFC 8785 canonical JSON, compact JWS with
// Ed25519 (RFC 7515, RFC 8037), and the check of a dsgw receipt (specs/ledger.md §12): entry
// hash, entry signature, C2SP checkpoint signature and the RFC 9162 inclusion proof.
// The reference implementation is ledger/receipt.py, ledger/checkpoint.py and ledger/merkle.py.

const encoder = new TextEncoder();

export function utf8(text) {
  return encoder.encode(text);
}

// RFC 8785 (JCS): ECMAScript's own serialisation of strings and numbers, object members sorted
// by their UTF-16 code units (what Array.prototype.sort does by default), no whitespace.
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`JCS has no form for the number ${value}`);
    return JSON.stringify(value);
  }
  if (typeof value === "string") {
    if (/[\uD800-\uDFFF]/.test(value.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""))) {
      throw new Error("JCS has no form for a lone surrogate");
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${canonicalJson(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  throw new Error(`JCS has no form for a ${typeof value}`);
}

export function b64urlEncode(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function b64urlDecode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new Error("not unpadded base64url");
  }
  const std = text.replaceAll("-", "+").replaceAll("_", "/");
  return b64Decode(std + "=".repeat((4 - (std.length % 4)) % 4));
}

export function b64Decode(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export function b64Encode(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) throw new Error("not hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export function hasEd25519() {
  return Boolean(globalThis.crypto && crypto.subtle);
}

// The participant's private JWK (RFC 8037) as a non-extractable WebCrypto signing key.
export async function importPrivateJwk(jwk) {
  if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.x || !jwk.d) {
    throw new TypeError("not an Ed25519 private JWK");
  }
  const key = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d },
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return { key, kid: jwk.kid ?? null };
}

export async function importPublicJwk(jwk) {
  return crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", x: jwk.x },
    { name: "Ed25519" },
    false,
    ["verify"],
  );
}

// A compact JWS (RFC 7515) over `payload` (bytes), alg EdDSA, with the given header members.
export async function signJws(signer, payload, header) {
  const protectedHeader = { alg: "EdDSA", ...(signer.kid ? { kid: signer.kid } : {}), ...header };
  const input = `${b64urlEncode(utf8(JSON.stringify(protectedHeader)))}.${b64urlEncode(payload)}`;
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, signer.key, utf8(input)));
  return `${input}.${b64urlEncode(sig)}`;
}

// The RFC 7523 client assertion of `participant` for the token endpoint `audience`.
export async function clientAssertion(signer, participant, audience) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: participant,
    sub: participant,
    aud: audience,
    iat: now,
    exp: now + 60,
    jti: crypto.randomUUID(),
  };
  return signJws(signer, utf8(JSON.stringify(claims)), { typ: "JWT" });
}

// The participant's contract signature (contracts/signing.py): JWS over JCS(document).
export async function signContract(signer, documentJson) {
  return signJws(signer, utf8(canonicalJson(documentJson)), { typ: "dsgw-contract+jws" });
}

// -- receipts ---------------------------------------------------------------------------------

export class ReceiptError extends Error {
  constructor(check, expected, found) {
    super(`receipt: check '${check}' failed: expected ${expected}, found ${found}`);
    this.check = check;
    this.expected = String(expected);
    this.found = String(found);
  }
}

function kind(value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    return `an object with ${Object.keys(value).sort().join(", ") || "no members"}`;
  }
  return Array.isArray(value) ? "list" : typeof value;
}

function sameMembers(object, names) {
  const keys = Object.keys(object).sort();
  return keys.length === names.length && [...names].sort().every((n, i) => n === keys[i]);
}

// The ledger's keys (GET /ledger/keys) as {kid: {key, raw}}.
export async function ledgerKeys(jwks) {
  const keys = {};
  for (const jwk of jwks.keys ?? []) {
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.kid !== "string") continue;
    keys[jwk.kid] = { key: await importPublicJwk(jwk), raw: b64urlDecode(jwk.x) };
  }
  return keys;
}

async function verifyEd25519(key, signature, data) {
  if (signature.length !== 64) return false;
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, data);
}

// C2SP signed-note key hash: SHA-256(name ‖ \n ‖ 0x01 ‖ key)[:4].
async function keyHash(name, raw) {
  return (await sha256(concat(utf8(`${name}\n`), new Uint8Array([1]), raw))).slice(0, 4);
}

export function parseCheckpoint(note) {
  if (typeof note !== "string") throw new ReceiptError("checkpoint", "a string", kind(note));
  const cut = note.indexOf("\n\n");
  if (cut < 0 || !note.endsWith("\n")) {
    throw new ReceiptError("checkpoint", "text\\n\\n— name signature\\n", JSON.stringify(note.slice(0, 120)));
  }
  const text = `${note.slice(0, cut)}\n`;
  const lines = note.slice(0, cut).split("\n");
  if (lines.length < 3) throw new ReceiptError("checkpoint", "origin, size and root lines", lines.length);
  const [origin, sizeText, rootText] = lines;
  if (!origin || !/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) {
    throw new ReceiptError("checkpoint", "origin, size", `${origin}, ${sizeText}`);
  }
  let root;
  try {
    root = b64Decode(rootText);
  } catch {
    root = new Uint8Array();
  }
  if (root.length !== 32 || b64Encode(root) !== rootText) {
    throw new ReceiptError("checkpoint", "the root as standard base64 of 32 bytes", rootText);
  }
  const signatures = [];
  for (const line of note.slice(cut + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    let raw = new Uint8Array();
    if (m) {
      try {
        raw = b64Decode(m[2]);
      } catch {
        raw = new Uint8Array();
      }
    }
    if (!m || raw.length < 5) throw new ReceiptError("checkpoint", "— name base64", line.slice(0, 120));
    signatures.push({ name: m[1], keyHash: raw.slice(0, 4), sig: raw.slice(4) });
  }
  return { origin, size: Number(sizeText), root, text, signatures };
}

export async function verifyCheckpoint(note, keys) {
  const cp = parseCheckpoint(note);
  for (const s of cp.signatures) {
    if (s.name !== cp.origin) continue;
    for (const [kid, k] of Object.entries(keys)) {
      if (!equal(await keyHash(cp.origin, k.raw), s.keyHash)) continue;
      if (!(await verifyEd25519(k.key, s.sig, utf8(cp.text)))) {
        throw new ReceiptError(
          "checkpoint",
          `an Ed25519 signature by ${kid} over the note text`,
          b64Encode(s.sig),
        );
      }
      return { ...cp, kid };
    }
  }
  throw new ReceiptError(
    "checkpoint",
    `a signature line named '${cp.origin}' by one of ${Object.keys(keys).sort().join(", ") || "none"}`,
    cp.signatures.map((s) => `${s.name} ${hex(s.keyHash)}`).join(", ") || "no signature",
  );
}

const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

// RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or a ReceiptError.
export async function inclusionRoot(leaf, index, size, proof) {
  if (!(index >= 0 && index < size)) throw new ReceiptError("inclusion", `an index below ${size}`, index);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32) throw new ReceiptError("inclusion", "32-byte hashes", `${p.length} bytes`);
    if (sn === 0) throw new ReceiptError("inclusion", "a shorter proof", `${proof.length} hashes`);
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ReceiptError("inclusion", "a longer proof", `${proof.length} hashes`);
  return r;
}

// Check a dsgw-receipt/1 with the ledger's keys; return what it proves, or throw ReceiptError.
export async function checkReceipt(receipt, keys) {
  if (!receipt || typeof receipt !== "object" || receipt.format !== "dsgw-receipt/1") {
    throw new ReceiptError("format", 'an object with "format": "dsgw-receipt/1"', kind(receipt));
  }
  const entry = receipt.entry;
  if (!entry || typeof entry !== "object" || !sameMembers(entry, ["body", "hash", "sig"])) {
    throw new ReceiptError("format", "entry {body, hash, sig}", kind(entry));
  }
  const body = entry.body;
  if (!body || typeof body !== "object" || !Number.isInteger(body.seq)) {
    throw new ReceiptError("format", "entry.body with an integer seq", kind(body));
  }
  let canonical;
  try {
    canonical = utf8(canonicalJson(body));
  } catch (err) {
    throw new ReceiptError("format", "JSON RFC 8785 can represent", err.message);
  }
  const digest = hex(await sha256(canonical));
  if (entry.hash !== digest) throw new ReceiptError("hash", digest, entry.hash);
  const kid = body.kid;
  const k = typeof kid === "string" ? keys[kid] : undefined;
  if (!k) throw new ReceiptError("kid", `one of ${Object.keys(keys).sort().join(", ")}`, kid);
  let sig;
  try {
    sig = b64urlDecode(entry.sig);
  } catch {
    sig = new Uint8Array();
  }
  if (!(await verifyEd25519(k.key, sig, canonical))) {
    throw new ReceiptError("signature", `an Ed25519 signature by ${kid}`, entry.sig);
  }
  let size = null;
  const inclusion = receipt.inclusion;
  if (inclusion !== null && inclusion !== undefined) {
    if (typeof inclusion !== "object" || !sameMembers(inclusion, ["checkpoint", "index", "size", "hashes"])) {
      throw new ReceiptError("format", "inclusion {checkpoint, index, size, hashes}", kind(inclusion));
    }
    const cp = await verifyCheckpoint(inclusion.checkpoint, keys);
    if (inclusion.index !== body.seq - 1) {
      throw new ReceiptError("inclusion", `index ${body.seq - 1}`, inclusion.index);
    }
    if (inclusion.size !== cp.size) {
      throw new ReceiptError("inclusion", `size ${cp.size} (the checkpoint's)`, inclusion.size);
    }
    let hashes;
    try {
      hashes = inclusion.hashes.map(fromHex);
    } catch {
      throw new ReceiptError("inclusion", "hashes as hex strings", kind(inclusion.hashes));
    }
    const leaf = await sha256(concat(new Uint8Array([0]), canonical));
    const root = await inclusionRoot(leaf, inclusion.index, cp.size, hashes);
    if (!equal(root, cp.root)) {
      throw new ReceiptError(
        "inclusion",
        `root ${hex(cp.root)} (the checkpoint's)`,
        `root ${hex(root)} from leaf ${inclusion.index} in a tree of ${cp.size}`,
      );
    }
    size = cp.size;
  }
  return { seq: body.seq, hash: digest, kid, type: String(body.type), time: String(body.time), checkpointSize: size };
}

// -- consistency proofs (specs/ledger.md §10.3, §14), after ledger/merkle.py verify_consistency
// and ledger/receipt.py check_consistency ------------------------------------------------------

// Sizes are JSON-safe integers (< 2^53), beyond JavaScript's 32-bit bit operations.
function powerOfTwo(x) {
  let n = x;
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}

// RFC 9162 §2.1.4.2: that the tree (newSize, newRoot) extends (oldSize, oldRoot), or a
// ReceiptError("consistency", …) saying what differed. Roots and proof hashes are 32-byte arrays.
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  const fail = (expected, found) => new ReceiptError("consistency", expected, found);
  if (!(Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize) && oldSize >= 0 && oldSize <= newSize)) {
    throw fail(`old size <= ${newSize}`, oldSize);
  }
  for (const p of proof) {
    if (!(p instanceof Uint8Array) || p.length !== 32) throw fail("32-byte hashes", `${p?.length ?? typeof p} bytes`);
  }
  if (oldSize === newSize) {
    if (proof.length) throw fail("an empty proof between equal sizes", `${proof.length} hashes`);
    if (!equal(oldRoot, newRoot)) throw fail(`one root for size ${oldSize}: ${hex(oldRoot)}`, hex(newRoot));
    return;
  }
  if (oldSize === 0) {
    if (proof.length) throw fail("an empty proof from the empty tree", `${proof.length} hashes`);
    return;
  }
  if (!proof.length) throw fail("at least one hash", "none");
  const path = [...proof];
  // A power of two: the old tree is a perfect subtree, its root the first node.
  if (powerOfTwo(oldSize)) path.unshift(oldRoot);
  let fn = oldSize - 1;
  let sn = newSize - 1;
  const odd = (x) => x % 2 === 1;
  const half = (x) => Math.floor(x / 2);
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw fail("fewer hashes", `${proof.length} hashes`);
    if (odd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw fail("more hashes", `${proof.length} hashes`);
  if (!equal(fr, oldRoot)) {
    throw fail(`old root ${hex(oldRoot)} (size ${oldSize})`, `root ${hex(fr)} rebuilt from the proof`);
  }
  if (!equal(sr, newRoot)) {
    throw fail(`new root ${hex(newRoot)} (size ${newSize})`, `root ${hex(sr)} rebuilt from the proof`);
  }
}

// Check a consistency proof as GET /ledger/proofs/consistency serves it ({old_checkpoint,
// new_checkpoint, hashes, …}) with the ledger's keys: both notes signed (§11.2), one origin,
// and the hashes joining the older root to the newer. Only the signed notes and the hashes are
// trusted: old_size, new_size, old_root and new_root, when present, must agree with the notes.
// Return {oldSize, newSize, oldRoot, newRoot, origin, oldKid, newKid}, or throw ReceiptError.
export async function checkConsistency(proof, keys) {
  const members = ["hashes", "new_checkpoint", "old_checkpoint"];
  if (!proof || typeof proof !== "object" || Array.isArray(proof) || !members.every((m) => m in proof)) {
    throw new ReceiptError("format", members.join(", "), kind(proof));
  }
  const notes = {};
  for (const which of ["old", "new"]) {
    try {
      notes[which] = await verifyCheckpoint(proof[`${which}_checkpoint`], keys);
    } catch (err) {
      if (err instanceof ReceiptError) {
        throw new ReceiptError("checkpoint", `${which} checkpoint: ${err.expected}`, err.found);
      }
      throw err;
    }
  }
  const { old, new: fresh } = notes;
  if (old.origin !== fresh.origin) throw new ReceiptError("consistency", `origin ${old.origin}`, fresh.origin);
  for (const [name, value] of [["old_size", old.size], ["new_size", fresh.size], ["old_root", hex(old.root)], ["new_root", hex(fresh.root)]]) {
    if (name in proof && proof[name] !== value) {
      throw new ReceiptError("format", `${name} ${value} (the signed checkpoint's)`, proof[name]);
    }
  }
  let hashes;
  try {
    if (!Array.isArray(proof.hashes)) throw new Error("not a list");
    hashes = proof.hashes.map(fromHex);
  } catch {
    throw new ReceiptError("format", "hashes as hex strings", kind(proof.hashes));
  }
  await verifyConsistency(old.size, fresh.size, old.root, fresh.root, hashes);
  return {
    oldSize: old.size,
    newSize: fresh.size,
    oldRoot: hex(old.root),
    newRoot: hex(fresh.root),
    origin: old.origin,
    oldKid: old.kid,
    newKid: fresh.kid,
  };
}
