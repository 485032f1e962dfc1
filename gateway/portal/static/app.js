// The portal's pages: routed by the URL fragment (#/catalogue, #/product/ID, #/contract/ID, …)
// so that moving between pages never reloads and the in-memory token survives. Every figure
// comes from the public API (api.js); every element is built with the DOM (no HTML strings).

import * as api from "./api.js";
import * as audit from "./audit.js";
import * as compute from "./compute.js";
import { workPages } from "./work.js";
import { openData, publicProduct } from "./opendata.js";
import { canonicalJson, checkReceipt, hasEd25519, importPrivateJwk, ledgerKeys, signContract } from "./crypto.js";

const STRINGS = JSON.parse(document.getElementById("dsgw-strings").textContent);
let lang = document.body.dataset.lang in STRINGS ? document.body.dataset.lang : "zh-CN";
const view = document.getElementById("view");
const myContracts = new Map(); // id -> {product, state}, this sign-in only
const productModes = new Map(); // product id -> its delivery modes, this sign-in only
let lastExchange = null;

function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// h("tag.class", {attr: value, on: {click: fn}}, ...children): one element, children as text.
function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElementNS(
    tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  if (classes.length) el.setAttribute("class", classes.join(" "));
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (name === "svg" || value === null || value === undefined || value === false) continue;
    else if (name === "color") el.style.background = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
const svg = (tag, attrs = {}, ...children) => h(tag, { ...attrs, svg: true }, ...children);

function facts(pairs) {
  return h("dl.facts", {}, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

// Replace what `target` shows: arrays flattened, null and false left out.
function fill(target, ...nodes) {
  target.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

function show(...nodes) {
  fill(view, ...nodes);
}

// A problem+json (RFC 9457) as a readable message: title, detail, status and stable type.
function problemBox(err) {
  if (!(err instanceof api.ApiProblem)) {
    return h("div.problem", { role: "alert" }, h("strong", {}, t("error")), " ", String(err?.message ?? err));
  }
  const p = err.problem;
  if (err.status === 0) return h("div.problem", { role: "alert" }, h("strong", {}, t("problem.network")), " ", p.detail);
  return h(
    "div.problem",
    { role: "alert", "data-problem-type": p.type ?? "" },
    h("strong", {}, p.title ?? t("error")),
    p.detail ? h("div", {}, p.detail) : null,
    h("div.ptype", {}, `${t("problem.status")} ${err.status} · ${p.type ?? ""}`),
    err.status === 401 && api.current() ? h("div", {}, t("signin.again")) : null,
    p.reasons ? h("div", {}, [].concat(p.reasons).map((r) => h("span.tag", {}, typeof r === "string" ? r : JSON.stringify(r)))) : null,
  );
}

function needSignIn() {
  if (api.current()) return false;
  show(h("p.message", { role: "alert", id: "need-signin" }, t("signin.needed")));
  return true;
}

function json(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

async function guarded(target, work) {
  fill(target, h("p.hint", {}, t("loading")));
  try {
    await work();
  } catch (err) {
    fill(target, problemBox(err));
  }
}

// -- sign-in ----------------------------------------------------------------------------------

const form = document.getElementById("signin-form");
const signedIn = document.getElementById("signed-in");
const signinMessage = document.getElementById("signin-message");

function say(message) {
  signinMessage.hidden = !message;
  signinMessage.textContent = message ?? "";
}

function showSession() {
  const s = api.current();
  form.hidden = Boolean(s);
  signedIn.hidden = !s;
  if (s) {
    document.getElementById("signed-in-id").textContent = s.participant;
    document.getElementById("signed-in-roles").textContent = s.roles.join(", ");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(null);
  const participant = document.getElementById("signin-participant").value.trim();
  const file = document.getElementById("signin-key").files[0];
  if (!participant || !file) return say(t("signin.nokey"));
  if (!hasEd25519()) return say(t("signin.nocrypto"));
  let signer;
  try {
    signer = await importPrivateJwk(JSON.parse(await file.text()));
  } catch {
    return say(t("signin.badkey"));
  } finally {
    document.getElementById("signin-key").value = ""; // the file is read once, then dropped
  }
  try {
    await api.signIn(participant, signer);
  } catch (err) {
    say(`${err.problem?.title ?? t("error")}: ${err.message}`);
    return;
  }
  showSession();
  route();
});

document.getElementById("signout").addEventListener("click", () => {
  api.signOut();
  myContracts.clear();
  productModes.clear();
  compute.forget();
  lastExchange = null;
  showSession();
  route();
});

// -- language ---------------------------------------------------------------------------------

function setLanguage(next) {
  lang = next;
  document.documentElement.lang = next;
  document.body.dataset.lang = next;
  document.cookie = `dsgw_lang=${next}; path=/portal; max-age=31536000; samesite=strict`;
  const url = new URL(location.href);
  url.searchParams.set("lang", next);
  history.replaceState(null, "", url);
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  for (const b of document.querySelectorAll("button.lang")) b.setAttribute("aria-pressed", String(b.dataset.lang === next));
  route();
}
for (const b of document.querySelectorAll("button.lang")) b.addEventListener("click", () => setLanguage(b.dataset.lang));

// -- catalogue --------------------------------------------------------------------------------

const FILTERS = [
  ["q", "catalogue.q", null],
  ["grade", "catalogue.grade", ["general", "important", "core"]],
  ["level", "catalogue.level", ["L1", "L2", "L3", "L4"]],
  ["domain", "catalogue.domain", null],
  ["delivery", "catalogue.delivery", ["api", "file", "compute"]],
];

function catalogue(params) {
  if (needSignIn()) return;
  const results = h("div", { id: "catalogue-results" });
  const inputs = FILTERS.map(([name, key, choices]) =>
    h("label", {}, t(key), choices
      ? h("select", { name }, h("option", { value: "" }, t("catalogue.any")), choices.map((c) => h("option", { value: c, selected: params.get(name) === c }, c)))
      : h("input", { name, value: params.get(name) ?? "" })),
  );
  const pi = h("input", { type: "checkbox", name: "public_interest", checked: params.get("public_interest") === "true" });
  const filterForm = h("form.filters.card", { id: "catalogue-filters", on: { submit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(e.target)) if (v) q.set(k, k === "public_interest" ? "true" : v);
    location.hash = `#/catalogue?${q}`;
  } } }, inputs, h("label", {}, t("catalogue.public_interest"), pi), h("button", { type: "submit" }, t("catalogue.search")));
  show(h("h1", {}, t("catalogue.title")), filterForm, results);
  guarded(results, async () => {
    const query = new URLSearchParams([...params].filter(([k]) => FILTERS.some(([n]) => n === k) || k === "public_interest"));
    const cat = await api.get(`/catalogue?${query}`);
    const datasets = cat["dcat:dataset"] ?? [];
    fill(results, 
      h("p.hint", {}, t("catalogue.total", { n: cat.total ?? datasets.length })),
      datasets.length === 0 ? h("p", {}, t("catalogue.none")) : null,
      datasets.map((d) => h("article.card.product", { "data-product": d["dct:identifier"] },
        h("h2", {}, h("a", { href: `#/product/${d["dct:identifier"]}` }, d["dct:title"])),
        h("p", {}, d["dct:description"]),
        h("div", {}, [d["dsgw:grade"], d["dsgw:level"], d["dcat:theme"], ...(d["dcat:distribution"] ?? []).map((x) => x["dsgw:deliveryMode"])].filter(Boolean).map((x) => [h("span.tag", {}, x), " "])),
      )),
    );
  });
}

// -- product ----------------------------------------------------------------------------------

// An ISO 8601 duration as the API writes a term (P30D, PT2S), in words.
function duration(value) {
  const days = /^P(\d+)D$/.exec(value);
  if (days) return t("offer.days", { n: days[1] });
  const seconds = /^PT(\d+(?:\.\d+)?)S$/.exec(value);
  return seconds ? t("offer.seconds", { n: seconds[1] }) : String(value);
}

function termRows(terms) {
  const labels = {
    purposes: "offer.purposes", term: "offer.term", quota_rows: "offer.rows", quota_calls: "offer.calls",
    price_fen: "offer.price", fields: "offer.fields", termination: "offer.termination",
    region: "offer.region", onward_transfer: "offer.onward_transfer", lawful_basis: "offer.lawful_basis",
    compute: "offer.compute",
  };
  return Object.entries(terms).filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0)).map(([k, v]) => {
    let shown = Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v);
    if (k === "price_fen") shown = `¥${(v / 100).toFixed(2)}`;
    if (k === "term") shown = duration(v);
    if (k === "compute") shown = compute.termsText(v, t);
    if (typeof v === "boolean") shown = v ? t("yes") : t("no");
    return [labels[k] ? t(labels[k]) : k, shown];
  });
}

function product(id) {
  // A visitor who has not signed in sees what the open-data catalogue publishes (opendata.js).
  if (!api.current()) return publicProduct(workUi, id);
  const box = h("div");
  show(box);
  guarded(box, async () => {
    const p = await api.get(`/products/${encodeURIComponent(id)}`);
    const dims = p.quality?.dimensions ?? [];
    fill(box, 
      h("h1", {}, p.name),
      h("p", {}, p.description),
      h("div.card", {}, facts([
        [t("product.grade"), [p.grade, p.level].filter(Boolean).join(" / ")],
        [t("product.domain"), p.domain],
        [t("product.merchant"), p.merchant_id],
        [t("product.status"), p.status],
      ])),
      h("h2", {}, t("product.offers")),
      p.offers.map((o) => h("section.card.offer", { "data-offer": o.id },
        h("h3", {}, o.id),
        facts(termRows(o.terms)),
        requestForm(o),
        h("details", {}, h("summary", {}, t("product.odrl")), json(o.odrl)),
      )),
      h("h2", {}, t("product.quality")),
      h("div.card.scroll", {}, h("table", {},
        h("tr", {}, h("th", {}, t("quality.dimension")), h("th", {}, t("quality.score")), h("th", {}, t("quality.method"))),
        dims.map((d) => h("tr", {}, h("td", {}, d.name ?? d.dimension), h("td", {}, d.score), h("td", {}, d.method))),
      ), dims.length ? null : json(p.quality)),
      h("h2", {}, t("product.lineage")),
      h("div.card", {}, json(p.lineage)),
      audit.traceLink(ui, p.id),
    );
  });
}

function requestForm(offer) {
  const out = h("div");
  const select = h("select", { name: "purpose" }, offer.terms.purposes.map((x) => h("option", { value: x }, x)));
  return h("form.filters", { on: { submit: async (e) => {
    e.preventDefault();
    await guarded(out, async () => {
      const c = await api.post("/contracts", { offer_id: offer.id, purpose: select.value });
      myContracts.set(c.id, { product: c.product_id, state: c.state });
      location.hash = `#/contract/${c.id}`;
    });
  } } }, h("label", {}, t("product.purpose"), select), h("button", { type: "submit" }, t("product.request")), out);
}

// -- contracts --------------------------------------------------------------------------------

function contracts() {
  if (needSignIn()) return;
  const idInput = h("input", { name: "contract", placeholder: "ctr_…", required: true });
  const list = h("div");
  show(
    h("h1", {}, t("contracts.title")),
    h("p.hint", {}, t("contracts.note")),
    list,
    h("form.filters.card", { on: { submit: (e) => { e.preventDefault(); location.hash = `#/contract/${idInput.value.trim()}`; } } },
      h("label", {}, t("contracts.open"), idInput), h("button", { type: "submit" }, t("contracts.go"))),
  );
  // GET /contracts: the caller's own contracts (every one for an auditor), newest first.
  guarded(list, async () => {
    const found = await api.all("/contracts", { limit: 200 });
    for (const c of found) myContracts.set(c.id, { product: c.product_id, state: c.state });
    fill(list, found.length === 0 ? h("p", {}, t("contracts.none")) : h("div.card.scroll", {}, h("table", { id: "my-contracts" },
      found.map((c) => h("tr", {}, h("td", {}, h("a", { href: `#/contract/${c.id}` }, c.id)), h("td", {}, c.product_id),
        h("td", {}, h("span.tag", {}, c.state)), h("td", {}, usageText(c)))),
    )));
  });
}

function contract(id) {
  if (needSignIn()) return;
  const box = h("div");
  show(box);
  guarded(box, async () => renderContract(box, await api.get(`/contracts/${encodeURIComponent(id)}`)));
}

// The delivery modes of a contract's product (GET /products/{id}), else null when unreadable.
async function deliveryModes(c) {
  if (!productModes.has(c.product_id)) {
    try {
      const p = await api.get(`/products/${encodeURIComponent(c.product_id)}`);
      productModes.set(c.product_id, Array.isArray(p.delivery_modes) ? p.delivery_modes : []);
    } catch {
      return null;
    }
  }
  return productModes.get(c.product_id);
}

// Whether the contract's product serves the rows a pull asks for (delivery "api"): a
// compute-only product does not, and its contract page shows the compute form alone. When the
// product cannot be read, an offer with compute terms is taken for compute only.
async function pullsRows(c) {
  const modes = await deliveryModes(c);
  return modes ? modes.includes("api") : !compute.offersCompute(c);
}

async function renderContract(box, c) {
  const me = api.current();
  myContracts.set(c.id, { product: c.product_id, state: c.state });
  const out = h("div", { id: "contract-result" });
  const sign = async (action) => guarded(out, async () => {
    const signature = await signContract(me.signer, c.document);
    await renderContract(box, await api.post(`/contracts/${c.id}/${action}`, { signature }));
  });
  const actions = [];
  if (me.participant === c.provider_id && c.state === "REQUESTED") {
    actions.push(h("button", { id: "sign-provider", on: { click: () => sign("agree") } }, t("contract.sign_provider")));
  }
  if (me.participant === c.consumer_id && c.state === "AGREED") {
    actions.push(h("button", { id: "sign-consumer", on: { click: () => sign("verify") } }, t("contract.sign_consumer")));
  }
  if (me.participant === c.consumer_id && c.state === "FINALIZED" && await pullsRows(c)) {
    actions.push(h("button", { id: "pull", on: { click: () => pull(c, out) } }, t("contract.pull")));
  }
  const computing = me.participant === c.consumer_id && c.state === "FINALIZED" && compute.offersCompute(c)
    ? compute.computePanel(computeUi, c) : null;
  fill(box, 
    h("h1", {}, `${t("contract.title")} ${c.id}`),
    h("div.card", {}, facts([
      [t("contract.state"), h("span.tag", { id: "contract-state" }, c.state)],
      [t("contract.provider"), c.provider_id],
      [t("contract.consumer"), c.consumer_id],
      [t("contract.purpose"), c.purpose],
      [t("contract.period"), `${c.not_before} — ${c.not_after}`],
      [t("contract.usage"), h("span", { id: "contract-usage" }, usageText(c))],
      [t("contract.hash"), h("code", {}, c.document_hash)],
      [t("contract.signatures"), Object.entries(c.signatures ?? {}).map(([k, v]) => `${k}: ${v ? t("contract.signed") : t("contract.unsigned")}`).join(" · ")],
      c.holder_approval?.required ? [t("contract.approval"), c.holder_approval.approved_at ?? "—"] : [undefined, undefined],
    ].filter(([k]) => k !== undefined))),
    h("h2", {}, t("product.offers")),
    h("div.card", {}, facts(termRows(c.document.offer ?? {}))),
    h("div.actions", {}, actions),
    out,
    computing,
    h("details", {}, h("summary", {}, t("contract.document")), h("pre", { id: "contract-document" }, canonicalJson(c.document))),
    audit.traceLink(ui, c.id),
  );
}

// Usage against the quotas the contract fixes: "rows 5 / 1000, calls 1 / —".
function usageText(c) {
  const quotas = c.document.quotas ?? {};
  return Object.entries(c.usage ?? {}).map(([k, v]) => `${k}: ${v} / ${quotas[k] ?? "∞"}`).join(", ");
}

function download(name, value) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(value, null, 2)], { type: "application/json" }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Show the contract's usage afresh (after an exchange), when its page is still shown.
function refreshUsage(c) {
  api.get(`/contracts/${encodeURIComponent(c.id)}`).then((fresh) => {
    const usage = document.getElementById("contract-usage");
    if (usage) usage.textContent = usageText(fresh);
  }, () => {});
}

// An exchange's download and receipt buttons and the receipt's verdict (a pull's, a compute's).
function receiptSection(x) {
  const receiptBox = h("div", { id: "receipt-check" });
  const seq = x.receipt?.seq;
  return [
    h("div.actions", {},
      h("button", { id: "download", on: { click: () => download(`${x.exchange_id}.json`, x) } }, t("contract.download")),
      h("button", { id: "verify-receipt", on: { click: function check() {
        return guarded(receiptBox, async () => {
          const receipt = await api.get(`/ledger/receipts/${seq}`);
          fill(receiptBox, await verdict(receipt),
            h("button", { id: "save-receipt", on: { click: () => download(`receipt-${seq}.json`, receipt) } }, t("exchange.save_receipt")),
            receipt.inclusion === null ? audit.proofPending(ui, receipt, check) : null);
        });
      } } }, t("exchange.get_receipt")),
    ),
    receiptBox,
  ];
}

async function pull(c, out) {
  await guarded(out, async () => {
    const x = await api.post("/exchanges", { contract_id: c.id, purpose: c.purpose, delivery: "api" });
    lastExchange = x;
    refreshUsage(c);
    const columns = x.fields ?? Object.keys(x.rows[0] ?? {});
    const seq = x.receipt?.seq;
    fill(out, h("section.card", { id: "exchange" },
      h("h2", {}, t("exchange.title")),
      facts([
        [t("exchange.rows"), x.row_count],
        [t("exchange.masked"), x.masked.join(", ") || "—"],
        [t("exchange.watermark"), x.watermark ?? "—"],
        [t("exchange.content_hash"), h("code", {}, x.content_hash)],
        [t("exchange.receipt"), h("code", { id: "receipt-seq" }, `seq ${seq}`)],
      ]),
      h("div.scroll", {}, h("table", { id: "rows" }, h("tr", {}, columns.map((k) => h("th", {}, k))), x.rows.map((r) => h("tr", {}, columns.map((k) => h("td", {}, r[k])))))),
      receiptSection(x),
    ));
  });
}

// -- receipts, checked here -------------------------------------------------------------------

async function verdict(receipt) {
  const keys = await ledgerKeys(await api.get("/ledger/keys", { auth: false }));
  try {
    const r = await checkReceipt(receipt, keys);
    return h("div.verified", { id: "verdict", "data-verdict": "verified" },
      h("strong", {}, `✔ ${t("verify.ok")}`), " ",
      t("verify.entry", { seq: r.seq, type: r.type, kid: r.kid }), "; ",
      r.checkpointSize === null ? t("verify.unproven") : t("verify.proven", { size: r.checkpointSize }),
      h("div", {}, h("code", {}, r.hash)));
  } catch (err) {
    if (err.check === undefined) throw err;
    return h("div.failed", { id: "verdict", "data-verdict": "failed", "data-check": err.check },
      h("strong", {}, `✘ ${t("verify.failed")}`),
      facts([[t("verify.check"), err.check], [t("verify.expected"), err.expected], [t("verify.found"), err.found]]));
  }
}

// -- auditor ----------------------------------------------------------------------------------

const PALETTE = ["#0b5cad", "#d9822b", "#2e8540", "#b3261e", "#6f42c1", "#00838f", "#8d6e63", "#c2185b", "#546e7a", "#9e9d24"];

async function allEntries() {
  const out = [];
  for (let start = 1; out.length < 100000; start += 1000) {
    const page = await api.get(`/ledger/entries?start=${start}&limit=1000`);
    out.push(...page);
    if (page.length < 1000) break;
  }
  return out;
}

function timeline(entries) {
  const days = [...new Set(entries.map((e) => e.body.time.slice(0, 10)))].sort();
  const types = [...new Set(entries.map((e) => e.body.type))].sort();
  const count = new Map();
  for (const e of entries) {
    const k = `${e.body.time.slice(0, 10)}|${e.body.type}`;
    count.set(k, (count.get(k) ?? 0) + 1);
  }
  const totals = days.map((d) => types.reduce((n, ty) => n + (count.get(`${d}|${ty}`) ?? 0), 0));
  const max = Math.max(1, ...totals);
  const W = 640, H = 260, left = 40, bottom = 40, top = 10;
  const band = (W - left - 10) / Math.max(1, days.length);
  const bars = [];
  days.forEach((d, i) => {
    let y = H - bottom;
    types.forEach((ty, j) => {
      const n = count.get(`${d}|${ty}`) ?? 0;
      if (!n) return;
      const hgt = ((H - bottom - top) * n) / max;
      y -= hgt;
      bars.push(svg("rect", { x: left + i * band + band * 0.15, y, width: band * 0.7, height: hgt, fill: PALETTE[j % PALETTE.length], "data-day": d, "data-type": ty },
        svg("title", {}, `${d} ${ty}: ${n}`)));
    });
    bars.push(svg("text", { x: left + i * band + band / 2, y: H - bottom + 16, "text-anchor": "middle", "font-size": 11 }, d));
    bars.push(svg("text", { x: left + i * band + band / 2, y: H - bottom - ((H - bottom - top) * totals[i]) / max - 4, "text-anchor": "middle", "font-size": 11 }, totals[i]));
  });
  return h("div.card", {},
    svg("svg", { class: "timeline", id: "timeline", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("auditor.timeline") },
      svg("line", { x1: left, y1: H - bottom, x2: W - 10, y2: H - bottom, stroke: "#888" }),
      svg("line", { x1: left, y1: top, x2: left, y2: H - bottom, stroke: "#888" }),
      svg("text", { x: left - 6, y: top + 10, "text-anchor": "end", "font-size": 11 }, max),
      bars),
    h("div.legend", {}, types.map((ty, j) => h("span", {}, h("i", { color: PALETTE[j % PALETTE.length] }), ty))),
    h("details", {}, h("summary", {}, t("auditor.count")), h("div.scroll", {}, h("table", { id: "timeline-table" },
      h("tr", {}, h("th", {}, t("auditor.day")), h("th", {}, t("auditor.type")), h("th", {}, t("auditor.count"))),
      [...count].map(([k, n]) => h("tr", {}, k.split("|").map((x) => h("td", {}, x)), h("td", {}, n)))))),
  );
}

function auditor() {
  if (needSignIn()) return;
  const plot = h("div", { id: "timeline-box" });
  const list = h("div.scroll");
  const inspected = h("div", { id: "entry" });
  const seqInput = h("input", { name: "seq", type: "number", min: 1, required: true, id: "inspect-seq" });
  const inspect = (seq) => guarded(inspected, async () => fill(inspected, json(await api.get(`/ledger/entries/${seq}`))));
  const receiptSeq = h("input", { name: "seq", type: "number", min: 1, id: "receipt-seq-input", value: lastExchange?.receipt?.seq ?? "" });
  const receiptText = h("textarea", { id: "receipt-json", spellcheck: "false" });
  const result = h("div", { id: "receipt-result" });
  show(
    h("h1", {}, t("auditor.title")),
    audit.auditorLinks(ui),
    h("h2", {}, t("auditor.timeline")), plot,
    h("h2", {}, t("auditor.receipt")),
    h("section.card", {},
      h("p.hint", {}, t("auditor.receipt_note")),
      h("form.filters", { id: "receipt-fetch", on: { submit: (e) => {
        e.preventDefault();
        guarded(result, async () => {
          receiptText.value = JSON.stringify(await api.get(`/ledger/receipts/${receiptSeq.value}`), null, 2);
          fill(result);
        });
      } } }, h("label", {}, t("auditor.load_receipt"), receiptSeq), h("button", { type: "submit" }, t("contracts.go")),
        h("button", { type: "button", id: "cut-checkpoint", on: { click: () => guarded(result, async () => {
          const cp = await api.post("/ledger/checkpoints", {});
          fill(result, h("div.card", { id: "checkpoint" }, h("strong", {}, t("auditor.checkpoint")), facts([["size", cp.size], ["root", cp.root], ["kid", cp.kid], ["time", cp.time]])));
        }) } }, t("auditor.cut"))),
      h("label", {}, t("auditor.receipt_json"), receiptText),
      h("div.actions", {}, h("button", { id: "receipt-verify", on: { click: () => guarded(result, async () => {
        let parsed;
        try {
          parsed = JSON.parse(receiptText.value);
        } catch (err) {
          parsed = err;
        }
        fill(result, parsed instanceof Error
          ? h("div.failed", { id: "verdict", "data-verdict": "failed", "data-check": "format" }, h("strong", {}, `✘ ${t("verify.failed")}`), " ", parsed.message)
          : await verdict(parsed));
      }) } }, t("auditor.verify"))),
      result),
    h("h2", {}, t("auditor.inspect")),
    h("form.filters.card", { on: { submit: (e) => { e.preventDefault(); inspect(seqInput.value); } } },
      h("label", {}, t("auditor.seq"), seqInput), h("button", { type: "submit" }, t("auditor.inspect"))),
    inspected,
    h("h2", {}, t("auditor.entries")), list,
  );
  guarded(plot, async () => {
    const entries = await allEntries();
    fill(plot, timeline(entries));
    fill(list, h("table", { id: "entries" },
      h("tr", {}, h("th", {}, t("auditor.seq")), h("th", {}, t("auditor.type")), h("th", {}, t("auditor.time"))),
      entries.slice(-200).reverse().map((e) => h("tr", {},
        h("td", {}, h("a", { href: "#", "data-seq": e.body.seq, on: { click: (ev) => { ev.preventDefault(); seqInput.value = e.body.seq; inspect(e.body.seq); } } }, e.body.seq)),
        h("td", {}, e.body.type), h("td", {}, e.body.time)))));
  });
}

// -- disclosure (public) ----------------------------------------------------------------------

function disclosure(year) {
  const y = /^\d{4}$/.test(year ?? "") ? year : String(new Date().getUTCFullYear());
  const yearInput = h("input", { name: "year", type: "number", value: y, min: 2000, max: 2100 });
  const box = h("div", { id: "disclosure" });
  show(
    h("h1", {}, t("disclosure.title")),
    h("form.filters.card", { on: { submit: (e) => { e.preventDefault(); location.hash = `#/disclosure/${yearInput.value}`; } } },
      h("label", {}, t("disclosure.year"), yearInput), h("button", { type: "submit" }, t("disclosure.show"))),
    box,
  );
  guarded(box, async () => {
    const d = await api.get(`/disclosure/${y}`, { auth: false });
    const name = (x) => (x && typeof x === "object" ? x.name ?? x.id : x) ?? "—";
    const table = (id, heads, rows) => h("div.card.scroll", {}, h("table", { id },
      h("tr", {}, heads.map((k) => h("th", {}, t(k)))), rows.map((r) => h("tr", {}, r.map((v) => h("td", {}, v))))));
    const known = new Set(["year", "generated_at", "publisher", "period", "authorisations", "products", "totals", "settlement"]);
    const months = (list) => (Array.isArray(list) && list.length ? list.join(", ") : "—");
    fill(box,
      h("div.card", {}, facts([
        [t("disclosure.year"), d.year],
        [t("disclosure.period"), d.period ? `${d.period.from} — ${d.period.until}` : undefined],
        [t("disclosure.publisher"), d.publisher],
        [t("disclosure.generated_at"), d.generated_at],
      ])),
      d.settlement ? [h("h2", {}, t("disclosure.settlement")), h("div.card", { id: "disclosure-settlement" }, facts([
        [t("disclosure.closed_periods"), months(d.settlement.closed_periods)],
        [t("disclosure.open_periods"), months(d.settlement.open_periods)],
        [t("disclosure.complete"), d.settlement.complete ? t("yes") : t("no")],
        [t("disclosure.publish_by"), d.settlement.publish_by],
      ]))] : null,
      d.totals ? [h("h2", {}, t("disclosure.totals")), h("div.card", { id: "disclosure-totals" },
        facts(Object.entries(d.totals).map(([k, v]) => [STRINGS[lang][`disclosure.total.${k}`] ?? k, k.endsWith("_fen") ? `¥${(v / 100).toFixed(2)}` : v])))] : null,
      Array.isArray(d.authorisations) ? [h("h2", {}, t("disclosure.authorisations")), table("disclosure-authorisations",
        ["disclosure.holder", "disclosure.operator", "disclosure.resources", "contract.period", "product.status"],
        d.authorisations.map((x) => [name(x.holder), name(x.operator), (x.resources ?? []).map((r) => `${r.name} (${[r.grade, r.level].filter(Boolean).join(" ")})`).join("; "), `${x.not_before ?? ""} — ${x.not_after ?? ""}`, x.status]))] : null,
      Array.isArray(d.products) ? [h("h2", {}, t("disclosure.products")), table("disclosure-products",
        ["disclosure.product", "product.merchant", "disclosure.resource", "catalogue.delivery", "product.status", "disclosure.fees"],
        d.products.map((x) => [x.name, name(x.merchant), x.resource ? `${x.resource.name} (${[x.resource.grade, x.resource.level].filter(Boolean).join(" ")})` : "—", (x.delivery_modes ?? []).join(", "), x.status,
          Object.entries(x.fees ?? {}).map(([k, v]) => `${STRINGS[lang][`disclosure.total.${k}`] ?? k}: ${k.endsWith("_fen") ? `¥${(v / 100).toFixed(2)}` : v}`).join(", ")]))] : null,
      Object.entries(d).filter(([k, v]) => !known.has(k) && v && typeof v === "object").map(([k, v]) => h("section.card", {}, h("h2", {}, k), json(v))),
    );
  });
}

// -- routing ----------------------------------------------------------------------------------

// What the pages of other modules (audit.js) build with.
const ui = { h, svg, t, fill, show, facts, json, guarded, needSignIn };

function route() {
  const [path, query] = (location.hash.slice(1) || "/catalogue").split("?");
  const params = new URLSearchParams(query ?? "");
  const [, page, arg] = path.split("/");
  const id = arg ? decodeURIComponent(arg) : "";
  switch (page) {
    case "product": return product(id);
    case "contracts": return contracts();
    case "contract": return contract(id);
    case "auditor": return auditor();
    case "trace": return audit.trace(ui, id);
    case "entry": return audit.entry(ui, id);
    case "checkpoints": return audit.checkpoints(ui);
    case "disclosure": return disclosure(id);
    case "open-data": return openData({ ...workUi, verdict, download }, params);
    default: return workPages[page] ? workPages[page](workUi, id, params) : catalogue(params);
  }
}

// What the work pages (work.js) borrow from this module.
const workUi = { h, t, fill, show, guarded, problemBox, needSignIn, facts, json, termRows };
// What the compute form (compute.js) borrows: the receipt check is the pull's.
const hasWord = (key) => key in STRINGS[lang] || key in STRINGS.en;
const computeUi = { h, t, fill, facts, guarded, problemBox, receiptSection, refreshUsage, hasWord };

window.addEventListener("hashchange", route);
showSession();
route();
