// The auditor's pages beyond the timeline: the trace of one product or contract, the entry
// inspector, the signed checkpoints and the consistency proof between two of them, and the
// "proof not yet cut" help of a fresh receipt. Every figure comes from the public API; every
// verdict is computed here, in the browser, with WebCrypto and the gateway's published keys
// (crypto.js), so the auditor trusts no server code for it.
//
// app.js hands in its page helpers (`ui`: h, svg, t, fill, show, facts, json, guarded,
// needSignIn) so these pages look and behave as the others.

import * as api from "./api.js";
import { checkConsistency, checkReceipt, hex, ledgerKeys, parseCheckpoint, verifyCheckpoint } from "./crypto.js";

const PAGE = 1000; // GET /ledger/entries' largest page
const MAX_ENTRIES = 100000;
const COLOURS = ["#0b5cad", "#d9822b", "#2e8540", "#b3261e", "#6f42c1", "#00838f", "#8d6e63", "#c2185b", "#546e7a", "#9e9d24"];

// Whether `ident` appears as a string anywhere in `value`, as gateway/client/api.py `names`
// decides it for `dsgw trace`: object values and list items, never object keys.
export function names(value, ident) {
  if (typeof value === "string") return value === ident;
  if (Array.isArray(value)) return value.some((v) => names(v, ident));
  if (value && typeof value === "object") return Object.values(value).some((v) => names(v, ident));
  return false;
}

// The one-line summary `dsgw trace` prints: the first six scalar members but `by`, each cut at 40.
export function summary(data) {
  const shown = [];
  for (const [key, value] of Object.entries(data ?? {})) {
    if (key === "by" || !["string", "number", "boolean"].includes(typeof value)) continue;
    const text = typeof value === "boolean" ? (value ? "True" : "False") : String(value);
    shown.push(`${key}=${text.length <= 40 ? text : `${text.slice(0, 37)}…`}`);
  }
  return shown.slice(0, 6).join(" ");
}

async function everyEntry() {
  const out = [];
  for (let start = 1; out.length < MAX_ENTRIES; ) {
    const page = await api.get(`/ledger/entries?start=${start}&limit=${PAGE}`);
    out.push(...page);
    if (page.length < PAGE) break;
    start = page[page.length - 1].body.seq + 1;
  }
  return out;
}

async function publishedKeys() {
  return ledgerKeys(await api.get("/ledger/keys", { auth: false }));
}

// An entry's hash and signature, checked here as a receipt without inclusion proof.
async function entryVerdict(entry, keys) {
  try {
    await checkReceipt({ format: "dsgw-receipt/1", entry, inclusion: null }, keys);
    return { ok: true };
  } catch (err) {
    if (err.check === undefined) throw err;
    return { ok: false, check: err.check, expected: err.expected, found: err.found };
  }
}

function failure(ui, id, err) {
  const { h, t, facts } = ui;
  return h("div.failed", { id, "data-verdict": "failed", "data-check": err.check },
    h("strong", {}, `✘ ${t("verify.failed")}`),
    facts([[t("verify.check"), err.check], [t("verify.expected"), err.expected], [t("verify.found"), err.found]]));
}

// Ids an entry names that have a trace of their own (prd_…, ctr_…, prt_…, xfr_…, …).
function tracedIds(value, out = new Set()) {
  if (typeof value === "string") {
    if (/^[a-z]{2,6}_[A-Za-z0-9_-]{4,}$/.test(value)) out.add(value);
  } else if (Array.isArray(value)) value.forEach((v) => tracedIds(v, out));
  else if (value && typeof value === "object") Object.values(value).forEach((v) => tracedIds(v, out));
  return out;
}

// -- links from the other pages ---------------------------------------------------------------

// The "trace it" link of a product or contract page, for those who may read the ledger.
export function traceLink(ui, ident) {
  const roles = api.current()?.roles ?? [];
  if (!roles.includes("auditor") && !roles.includes("admin")) return null;
  return ui.h("p", {}, ui.h("a", { href: `#/trace/${encodeURIComponent(ident)}`, id: "trace-link" }, `${ui.t("trace.link")} →`));
}

// The auditor page's way to the pages of this module.
export function auditorLinks(ui) {
  const { h, t } = ui;
  const ident = h("input", { name: "ident", placeholder: "prd_… / ctr_…", required: true, id: "trace-ident" });
  return h("section.card", { id: "audit-links" },
    h("p", {}, h("a", { href: "#/checkpoints", id: "checkpoints-link" }, `${t("checkpoints.title")} →`), " ", h("span.hint", {}, t("checkpoints.note"))),
    h("form.filters", { id: "trace-form", on: { submit: (e) => { e.preventDefault(); location.hash = `#/trace/${encodeURIComponent(ident.value.trim())}`; } } },
      h("label", {}, t("trace.ident"), ident), h("button", { type: "submit" }, t("trace.go"))));
}

// -- trace ------------------------------------------------------------------------------------

function traceDots(ui, found, types) {
  const { svg, t } = ui;
  const times = found.map((e) => Date.parse(e.body.time));
  const first = Math.min(...times);
  const span = Math.max(1, Math.max(...times) - first);
  const W = 640, H = 70, left = 10, right = 10;
  const x = (ms) => left + ((W - left - right) * (ms - first)) / span;
  return svg("svg", { class: "timeline", id: "trace-plot", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("trace.plot") },
    svg("line", { x1: left, y1: 30, x2: W - right, y2: 30, stroke: "#888" }),
    found.map((e, i) => svg("circle", { cx: x(times[i]), cy: 30, r: 6, fill: COLOURS[types.indexOf(e.body.type) % COLOURS.length], "data-seq": e.body.seq },
      svg("title", {}, `${e.body.seq} ${e.body.type} ${e.body.time}`))),
    svg("text", { x: left, y: 60, "font-size": 11 }, found[0].body.time.slice(0, 19).replace("T", " ")),
    svg("text", { x: W - right, y: 60, "font-size": 11, "text-anchor": "end" }, found[found.length - 1].body.time.slice(0, 19).replace("T", " ")));
}

export function trace(ui, ident) {
  const { h, t, fill, show, guarded, needSignIn, facts } = ui;
  if (needSignIn()) return;
  const box = h("div", { id: "trace" });
  const again = h("input", { name: "ident", value: ident, required: true, id: "trace-ident" });
  show(
    h("h1", {}, t("trace.title", { id: ident })),
    h("p.hint", {}, t("trace.note")),
    h("form.filters.card", { on: { submit: (e) => { e.preventDefault(); location.hash = `#/trace/${encodeURIComponent(again.value.trim())}`; } } },
      h("label", {}, t("trace.ident"), again), h("button", { type: "submit" }, t("trace.go"))),
    box,
  );
  if (!ident) return fill(box);
  guarded(box, async () => {
    const [entries, keys] = await Promise.all([everyEntry(), publishedKeys()]);
    const found = entries.filter((e) => names(e.body?.data, ident));
    if (found.length === 0) return fill(box, h("p", { id: "trace-none" }, t("trace.none", { id: ident, n: entries.length })));
    const verdicts = await Promise.all(found.map((e) => entryVerdict(e, keys)));
    const bad = verdicts.filter((v) => !v.ok).length;
    const types = [...new Set(found.map((e) => e.body.type))].sort();
    let day = null;
    const items = [];
    found.forEach((e, i) => {
      const b = e.body;
      const data = b.data ?? {};
      if (b.time.slice(0, 10) !== day) {
        day = b.time.slice(0, 10);
        items.push(h("li.day", {}, day));
      }
      const v = verdicts[i];
      items.push(h("li.step", { "data-seq": b.seq, "data-type": b.type },
        h("i.dot", { color: COLOURS[types.indexOf(b.type) % COLOURS.length] }),
        h("div", {},
          h("span.when", {}, b.time.slice(11, 19)), " ",
          h("strong", {}, b.type), " ",
          data.by ? h("span.hint", {}, `${t("trace.by")} ${data.by}`) : null, " ",
          h("a", { href: `#/entry/${b.seq}`, class: "seq" }, `seq ${b.seq}`), " ",
          v.ok ? h("span.tag.ok", { title: t("trace.sig_ok") }, "✔") : h("span.tag.bad", { title: `${v.check}: ${v.expected} / ${v.found}` }, `✘ ${v.check}`)),
        h("div.hint.summary", {}, summary(data))));
    });
    fill(box,
      h("div.card", {}, facts([
        [t("trace.count"), h("span", { id: "trace-count" }, String(found.length))],
        [t("trace.span"), `${found[0].body.time} — ${found[found.length - 1].body.time}`],
        [t("trace.types"), types.map((ty) => [h("span.tag", {}, ty), " "])],
        [t("trace.checked"), h("span", { id: "trace-checked", "data-failed": bad }, bad ? t("trace.checked_bad", { n: bad }) : t("trace.checked_ok", { n: found.length }))],
      ]), traceDots(ui, found, types)),
      h("ol.trace", { id: "trace-steps" }, items));
  });
}

// -- entry inspector --------------------------------------------------------------------------

export function entry(ui, seqText) {
  const { h, t, fill, show, guarded, needSignIn, facts, json } = ui;
  if (needSignIn()) return;
  const box = h("div", { id: "entry-page" });
  const seq = /^[1-9][0-9]{0,15}$/.test(seqText) ? seqText : "1";
  show(h("h1", {}, t("entry.title", { seq })), box);
  guarded(box, async () => {
    const [e, keys] = await Promise.all([api.get(`/ledger/entries/${seq}`), publishedKeys()]);
    const b = e.body;
    const v = await entryVerdict(e, keys);
    const links = [...tracedIds(b.data)];
    fill(box,
      h("p", {}, Number(seq) > 1 ? h("a", { href: `#/entry/${Number(seq) - 1}`, id: "entry-prev" }, `← seq ${Number(seq) - 1}`) : null, " ",
        h("a", { href: `#/entry/${Number(seq) + 1}`, id: "entry-next" }, `seq ${Number(seq) + 1} →`)),
      h("div.card", {}, facts([
        [t("auditor.seq"), b.seq], [t("auditor.type"), b.type], [t("auditor.time"), b.time],
        ["kid", h("code", {}, b.kid)], ["hash", h("code", {}, e.hash)], ["prev", h("code", {}, b.prev)],
        [t("entry.check"), v.ok
          ? h("span.verified", { id: "entry-verdict", "data-verdict": "verified" }, `✔ ${t("entry.check_ok")}`)
          : failure(ui, "entry-verdict", v)],
      ])),
      links.length ? h("p", {}, t("entry.traces"), " ", links.map((id) => [h("a", { href: `#/trace/${encodeURIComponent(id)}`, "data-trace": id }, id), " "])) : null,
      json(e));
  });
}

// -- checkpoints and consistency ---------------------------------------------------------------

async function checkpointVerdict(cp, keys) {
  try {
    const note = await verifyCheckpoint(cp.note, keys);
    if (note.size !== cp.size || hex(note.root) !== cp.root) {
      return { ok: false, check: "checkpoint", expected: `the signed note's size ${note.size}, root ${hex(note.root)}`, found: `listed size ${cp.size}, root ${cp.root}` };
    }
    return { ok: true, kid: note.kid };
  } catch (err) {
    if (err.check === undefined) throw err;
    return { ok: false, check: err.check, expected: err.expected, found: err.found };
  }
}

function saveText(ui, name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = ui.h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function checkpoints(ui) {
  const { h, t, fill, show, guarded, needSignIn, facts } = ui;
  if (needSignIn()) return;
  const list = h("div", { id: "checkpoint-list" });
  const saved = h("textarea", { id: "saved-checkpoint", spellcheck: "false", placeholder: t("consistency.saved_placeholder") });
  const proofText = h("textarea", { id: "consistency-json", spellcheck: "false" });
  const result = h("div", { id: "consistency-result" });
  const cutOut = h("div");
  let keys = null;

  const chosen = (name) => Number(list.querySelector(`input[name=${name}]:checked`)?.value);

  async function verifyShown() {
    let proof;
    try {
      proof = JSON.parse(proofText.value);
    } catch (err) {
      return fill(result, failure(ui, "consistency-verdict", { check: "format", expected: "JSON", found: err.message }));
    }
    keys ??= await publishedKeys();
    try {
      const r = await checkConsistency(proof, keys);
      fill(result, h("div.verified", { id: "consistency-verdict", "data-verdict": "verified" },
        h("strong", {}, `✔ ${t("verify.ok")}`), " ",
        t("consistency.ok", { old: r.oldSize, new: r.newSize }),
        facts([
          [t("consistency.old"), h("code", {}, `${r.oldSize} · ${r.oldRoot} · ${r.oldKid}`)],
          [t("consistency.new"), h("code", {}, `${r.newSize} · ${r.newRoot} · ${r.newKid}`)],
          [t("consistency.hashes"), (proof.hashes ?? []).length],
        ])));
    } catch (err) {
      if (err.check === undefined) throw err;
      fill(result, failure(ui, "consistency-verdict", err));
    }
  }

  async function fetchProof() {
    const pasted = saved.value.trim() ? `${saved.value.replace(/\r\n/g, "\n").replace(/\n*$/, "")}\n` : null;
    let oldSize = chosen("old");
    const newSize = chosen("new");
    if (pasted !== null) {
      try {
        oldSize = parseCheckpoint(pasted).size;
      } catch (err) {
        return fill(result, failure(ui, "consistency-verdict", err.check === undefined ? { check: "checkpoint", expected: "a checkpoint note", found: err.message } : err));
      }
    }
    if (!oldSize || !newSize) return fill(result, h("p.message", { role: "alert" }, t("consistency.pick")));
    const [a, b] = oldSize <= newSize ? [oldSize, newSize] : [newSize, oldSize];
    if (pasted !== null && oldSize > newSize) return fill(result, h("p.message", { role: "alert" }, t("consistency.saved_newer")));
    const proof = await api.get(`/ledger/proofs/consistency?old=${a}&new=${b}`);
    const notes = [];
    if (pasted !== null) {
      // Your own checkpoint, not the gateway's copy of it, is what the proof must start from.
      if (proof.old_checkpoint !== pasted) notes.push(h("p.message", { id: "saved-differs" }, t("consistency.saved_differs", { size: a })));
      proof.old_checkpoint = pasted;
      delete proof.old_root;
    }
    proofText.value = JSON.stringify(proof, null, 2);
    await verifyShown();
    if (notes.length) result.prepend(...notes);
  }

  show(
    h("h1", {}, t("checkpoints.title")),
    h("p.hint", {}, t("checkpoints.explain")),
    h("div", { id: "checkpoint-schedule" }),
    list,
    h("div.actions", {}, h("button", { id: "checkpoints-cut", on: { click: () => guarded(cutOut, async () => {
      await api.post("/ledger/checkpoints", {});
      fill(cutOut);
      render();
    }) } }, t("auditor.cut"))),
    cutOut,
    h("h2", {}, t("consistency.title")),
    h("section.card", {},
      h("p.hint", {}, t("consistency.note")),
      h("label", {}, t("consistency.saved"), saved),
      h("div.actions", {},
        h("button", { id: "consistency-fetch", on: { click: () => guarded(result, fetchProof) } }, t("consistency.fetch")),
        h("button", { id: "consistency-verify", on: { click: () => guarded(result, verifyShown) } }, t("auditor.verify")),
        h("button", { id: "consistency-save", on: { click: () => proofText.value && saveText(ui, "consistency.json", proofText.value) } }, t("consistency.save"))),
      h("label", {}, t("consistency.json"), proofText),
      result),
  );

  function render() {
    guarded(list, async () => {
      const [cps, k] = await Promise.all([api.all("/ledger/checkpoints", { limit: 1000 }), publishedKeys()]);
      keys = k;
      if (cps.length === 0) return fill(list, h("p", { id: "checkpoints-none" }, t("checkpoints.none")));
      const verdicts = await Promise.all(cps.map((cp) => checkpointVerdict(cp, keys)));
      const last = cps.length - 1;
      fill(list, h("div.card.scroll", {}, h("table", { id: "checkpoints" },
        h("tr", {}, [t("consistency.old"), t("consistency.new"), t("checkpoints.size"), t("checkpoints.root"), t("auditor.time"), "kid", t("checkpoints.signature"), ""].map((x) => h("th", {}, x))),
        cps.map((cp, i) => h("tr", { "data-size": cp.size },
          h("td", {}, h("input", { type: "radio", name: "old", value: cp.size, checked: i === Math.max(0, last - 1), "aria-label": `${t("consistency.old")} ${cp.size}` })),
          h("td", {}, h("input", { type: "radio", name: "new", value: cp.size, checked: i === last, "aria-label": `${t("consistency.new")} ${cp.size}` })),
          h("td", {}, cp.size),
          h("td", {}, h("code", { title: cp.root }, `${cp.root.slice(0, 16)}…`)),
          h("td", {}, cp.time),
          h("td", {}, h("code", {}, cp.kid)),
          h("td", { class: "sig", "data-verdict": verdicts[i].ok ? "verified" : "failed" }, verdicts[i].ok
            ? h("span.tag.ok", {}, `✔ ${t("checkpoints.signed_by", { kid: verdicts[i].kid })}`)
            : h("span.tag.bad", {}, `✘ ${verdicts[i].check}: ${verdicts[i].expected} / ${verdicts[i].found}`)),
          h("td", {}, h("button.small", { type: "button", "data-save": cp.size, on: { click: () => saveText(ui, `checkpoint-${cp.size}.txt`, cp.note) } }, t("checkpoints.save"))),
        )))));
    });
    schedule(ui, document.getElementById("checkpoint-schedule"));
  }
  render();
}

// -- a receipt whose entry no checkpoint covers yet -------------------------------------------

function schedule(ui, target, entryTime = null) {
  const { h, t, fill } = ui;
  return api.get("/ledger/checkpoints/schedule", { auth: false }).then((s) => {
    const due = entryTime ? new Date(Date.parse(entryTime) + s.seconds * 1000) : null;
    fill(target, h("p.hint", { "data-every": s.every, "data-seconds": s.seconds },
      t("schedule.rule", { every: s.every, seconds: s.seconds }), " ",
      s.latest_time ? t("schedule.latest", { size: s.latest_size, time: s.latest_time }) : t("schedule.never"),
      due ? [" ", h("strong", { id: "proof-due", "data-due": due.toISOString() }, t("schedule.due", { time: due.toISOString() }))] : null));
    return due;
  }, () => fill(target));
}

// Under a receipt verified without inclusion proof: how the gateway cuts checkpoints, when this
// entry's proof is due, a button to fetch the receipt again, and a fetch on its own at that time.
export function proofPending(ui, receipt, again) {
  const { h, t } = ui;
  const when = h("div");
  const box = h("div.card", { id: "proof-pending" },
    h("p", {}, t("schedule.pending")), when,
    h("button", { id: "refetch-receipt", on: { click: () => again() } }, t("schedule.again")));
  schedule(ui, when, receipt.entry.body.time).then((due) => {
    if (!due || due.getTime() <= Date.now()) return; // overdue: the button asks again
    const wait = Math.min(2 ** 31 - 1, due.getTime() - Date.now() + 1500);
    setTimeout(() => {
      if (box.isConnected) again();
    }, wait);
  });
  return box;
}
