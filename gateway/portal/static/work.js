// The work pages of merchants, holders and the platform admin, and a party's statement
// (specs/portal.md §2). app.js routes to them and lends its DOM helpers (`ui`); every figure
// comes from the public API, every refusal is the API's problem shown as a message.

import * as api from "./api.js";
import { b64urlDecode, canonicalJson, hex, ledgerKeys, sha256, utf8 } from "./crypto.js";

const yuan = (fen) => (typeof fen === "number" ? `¥${Math.trunc(fen / 100).toLocaleString("en")}.${String(Math.abs(fen) % 100).padStart(2, "0")}` : "—");
const toFen = (text) => Math.round(Number(text || 0) * 100);
const enc = encodeURIComponent;

// The month before today (UTC) as YYYY-MM: the period a statement is most often asked for.
function lastMonth() {
  const d = new Date();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - 1);
  return d.toISOString().slice(0, 7);
}

// A button that runs `work` and shows its result or the API's problem in `out`.
function act(ui, out, label, work, attrs = {}) {
  return ui.h("button", { type: "button", ...attrs, on: { click: () => ui.guarded(out, work) } }, label);
}

// A reason input and a button: the reason goes to the action (suspend, reject, revoke, refuse).
function withReason(ui, out, label, work, attrs = {}) {
  const reason = ui.h("input", { name: "reason", placeholder: ui.t("work.reason"), "aria-label": ui.t("work.reason") });
  return ui.h("span.actions", {}, reason, act(ui, out, label, () => work(reason.value.trim()), attrs));
}

// A table; on a phone each row becomes a block of labelled cells (portal.css, table.stack).
function table(ui, id, heads, rows) {
  const labels = heads.map((k) => ui.t(k));
  return ui.h("div.card.scroll", {}, ui.h("table.stack", { id },
    ui.h("tr", {}, labels.map((k) => ui.h("th", {}, k))),
    rows.map((r) => ui.h("tr", {}, r.map((v, i) => ui.h("td", { "data-label": labels[i] }, v))))));
}

const tag = (ui, text, attrs = {}) => ui.h("span.tag", attrs, text);

// -- merchant ----------------------------------------------------------------------------------

function merchant(ui) {
  if (ui.needSignIn()) return;
  const me = api.current().participant;
  const auths = ui.h("div", { id: "merchant-authorisations" });
  const products = ui.h("div", { id: "merchant-products" });
  const contracts = ui.h("div", { id: "merchant-contracts" });
  ui.show(
    ui.h("h1", {}, ui.t("work.merchant")),
    ui.h("h2", {}, ui.t("work.my_authorisations")), auths,
    ui.h("h2", {}, ui.t("work.my_products")), products,
    ui.h("h2", {}, ui.t("work.contracts_on_mine")), contracts,
    statements(ui, me),
  );
  ui.guarded(auths, async () => {
    const mine = (await api.all("/authorisations", { limit: 500 })).filter((a) => a.operator_id === me);
    ui.fill(auths, mine.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "authorisation-list",
      ["work.authorisation", "work.holder_id", "work.resources", "work.fee_cap", "product.status", "work.actions"],
      mine.map((a) => [a.id, a.holder_id, a.resource_ids.join(", "), yuan(a.fee_cap_fen), tag(ui, a.status),
        a.status === "active" ? ui.h("a", { href: `#/draft/${a.id}`, "data-draft": a.id }, ui.t("work.draft")) : "—"])));
  });
  ui.guarded(products, async () => {
    const list = await api.all("/products", { limit: 200 });
    ui.fill(products, list.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "product-list",
      ["work.product", "product.grade", "product.status", "work.next"],
      list.map((p) => [ui.h("a", { href: `#/work-product/${p.id}` }, p.name), [p.grade, p.level].filter(Boolean).join(" / "),
        tag(ui, p.status, { "data-product-status": p.id }), p.allowed_next_states.join(", ")])));
  });
  ui.guarded(contracts, async () => {
    const list = (await api.all("/contracts?role=provider", { limit: 200 })).filter((c) => c.provider_id === me);
    ui.fill(contracts, list.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "provider-contracts",
      ["work.contract", "work.product", "work.consumer", "contract.state", "work.approval"],
      list.map((c) => [ui.h("a", { href: `#/contract/${c.id}` }, c.id), c.product_id, c.consumer_id, tag(ui, c.state),
        c.holder_approval?.required ? (c.holder_approval.approved_at ? ui.t("work.approved") : ui.t("work.awaiting_holder")) : "—"])));
  });
}

// A party's signed statements (GET /settlement/statements: its own, newest month first), each
// a link to its page; and the period field, to open one by its month.
function statements(ui, me) {
  const list = ui.h("div", { id: "statements" });
  const period = ui.h("input", { name: "period", id: "statement-period", value: lastMonth(), pattern: "\\d{4}-\\d{2}", required: true });
  ui.guarded(list, async () => {
    const found = await api.all("/settlement/statements", { limit: 200 });
    ui.fill(list, found.length === 0 ? ui.h("p", { id: "statements-none" }, ui.t("work.no_statements")) : table(ui, "statement-list",
      ["work.statement", "work.period", "work.owes", "work.earns", "work.ledger_entry"],
      found.map((st) => [ui.h("a", { href: `#/statement/${st.id}`, "data-statement": st.id }, st.id), st.period,
        yuan(st.owes_fen), yuan(st.earns_fen), String(st.ledger_seq)])));
  });
  return [
    ui.h("h2", {}, ui.t("work.statements")), list,
    ui.h("form.filters.card", { id: "statement-form", on: { submit: (e) => {
      e.preventDefault();
      location.hash = `#/statement/stm_${period.value.trim()}_${me}`;
    } } }, ui.h("label", {}, ui.t("work.period"), period), ui.h("button", { type: "submit" }, ui.t("work.open_statement")),
    ui.h("span.hint", {}, ui.t("work.statement_note"))),
  ];
}

function offerBlock(ui, n) {
  const input = (name, attrs = {}) => ui.h("input", { name, ...attrs });
  return ui.h("fieldset.card.offer-draft", { "data-offer-index": n },
    ui.h("legend", {}, `${ui.t("work.offer")} ${n + 1}`),
    ui.h("div.filters", {},
      ui.h("label", {}, ui.t("work.purposes"), input("purposes", { required: true, placeholder: "credit-risk-assessment, …" })),
      ui.h("label", {}, ui.t("work.term_days"), input("term_days", { type: "number", min: 1, value: 30, required: true })),
      ui.h("label", {}, ui.t("offer.rows"), input("quota_rows", { type: "number", min: 1 })),
      ui.h("label", {}, ui.t("offer.calls"), input("quota_calls", { type: "number", min: 1 })),
      ui.h("label", {}, ui.t("work.price_yuan"), input("price_yuan", { type: "number", min: 0, step: "0.01", value: 0 })),
      ui.h("label", {}, ui.t("work.per_call_yuan"), input("per_call_yuan", { type: "number", min: 0, step: "0.01", value: 0 }))));
}

function offerOf(block) {
  const v = (name) => block.querySelector(`[name=${name}]`).value.trim();
  const offer = {
    purposes: v("purposes").split(/[,，\s]+/).filter(Boolean),
    term: `P${Number(v("term_days"))}D`,
    price_fen: toFen(v("price_yuan")),
  };
  if (v("quota_rows")) offer.quota_rows = Number(v("quota_rows"));
  if (v("quota_calls")) offer.quota_calls = Number(v("quota_calls"));
  if (toFen(v("per_call_yuan"))) offer.price = { per_call_fen: toFen(v("per_call_yuan")) };
  return offer;
}

function draft(ui, authorisationId) {
  if (ui.needSignIn()) return;
  const box = ui.h("div");
  ui.show(box);
  ui.guarded(box, async () => {
    const a = await api.get(`/authorisations/${enc(authorisationId)}`);
    const resources = await Promise.all(a.resource_ids.map((id) => api.get(`/resources/${enc(id)}`).catch(() => ({ id, name: id }))));
    const out = ui.h("div", { id: "draft-result" });
    const offers = ui.h("div", { id: "draft-offers" }, offerBlock(ui, 0));
    const name = ui.h("input", { name: "name", required: true, id: "draft-name" });
    const description = ui.h("textarea", { name: "description", id: "draft-description" });
    const resource = ui.h("select", { name: "resource_id", id: "draft-resource" },
      resources.map((r) => ui.h("option", { value: r.id }, `${r.name} (${[r.grade, r.level].filter(Boolean).join(" ")})`)));
    const modes = a.product_kinds.map((m, i) => ui.h("label", {}, m, ui.h("input", { type: "checkbox", name: "delivery", value: m, checked: i === 0 })));
    const publicInterest = ui.h("input", { type: "checkbox", name: "public_interest" });
    ui.fill(box,
      ui.h("h1", {}, ui.t("work.draft_title")),
      ui.h("div.card", {}, ui.facts([
        [ui.t("work.authorisation"), a.id], [ui.t("work.holder_id"), a.holder_id],
        [ui.t("work.fee_cap"), ui.h("span", { id: "fee-cap" }, yuan(a.fee_cap_fen))], [ui.t("work.kinds"), a.product_kinds.join(", ")],
        [ui.t("work.share"), Object.entries(a.revenue_share).map(([k, v]) => `${k} ${v}%`).join(" · ")],
      ])),
      ui.h("p.hint", {}, ui.t("work.cap_note", { cap: yuan(a.fee_cap_fen) })),
      ui.h("form.card", { id: "draft-form", on: { submit: async (e) => {
        e.preventDefault();
        await ui.guarded(out, async () => {
          const p = await api.post("/products", {
            name: name.value.trim(), description: description.value.trim(), resource_id: resource.value,
            authorisation_id: a.id, public_interest: publicInterest.checked,
            delivery_modes: modes.map((l) => l.querySelector("input")).filter((x) => x.checked).map((x) => x.value),
            offers: [...offers.querySelectorAll(".offer-draft")].map(offerOf),
          });
          location.hash = `#/work-product/${p.id}`;
        });
      } } },
        ui.h("div.filters", {}, ui.h("label", {}, ui.t("work.product_name"), name), ui.h("label", {}, ui.t("work.resource"), resource)),
        ui.h("label", {}, ui.t("work.description"), description),
        ui.h("div.filters", {}, ui.h("span", {}, ui.t("catalogue.delivery")), modes, ui.h("label", {}, ui.t("work.public_interest"), publicInterest)),
        offers,
        ui.h("div.actions", {},
          ui.h("button", { type: "button", id: "add-offer", on: { click: () => offers.append(offerBlock(ui, offers.children.length)) } }, ui.t("work.add_offer")),
          ui.h("button", { type: "submit", id: "draft-submit" }, ui.t("work.save_draft")))),
      out);
  });
}

// A product as its merchant and the admin work on it: state, derived grade, quality, actions.
// The move from a product's state to each state it may go to next, and who makes it.
const MOVES = {
  "draft>review": ["submit", "merchant"], "review>listed": ["list", "admin"], "review>draft": ["reject", "admin"],
  "listed>suspended": ["suspend", "admin"], "suspended>listed": ["reinstate", "admin"],
};

function workProduct(ui, id) {
  if (ui.needSignIn()) return;
  const box = ui.h("div");
  ui.show(box);
  const render = (p) => {
    const me = api.current();
    const admin = me.roles.includes("admin");
    const out = ui.h("div", { id: "product-result" });
    const moves = p.allowed_next_states.map((next) => (next === "delisted" ? ["delist", "any"] : MOVES[`${p.status}>${next}`]))
      .filter((m) => m && (m[1] === "any" || (m[1] === "admin" ? admin : me.participant === p.merchant_id)))
      .map(([a]) => a);
    const dims = p.quality?.dimensions ?? [];
    ui.fill(box,
      ui.h("h1", {}, p.name),
      ui.h("div.card", {}, ui.facts([
        [ui.t("product.status"), tag(ui, p.status, { id: "product-status" })],
        [ui.t("work.status_reason"), p.status_reason ?? undefined],
        [ui.t("work.derived_grade"), ui.h("span", { id: "derived-grade" }, [p.grade, p.level].filter(Boolean).join(" / "))],
        [ui.t("product.domain"), p.domain], [ui.t("product.merchant"), p.merchant_id],
        [ui.t("work.authorisation"), p.authorisation_id], [ui.t("work.resource"), p.resource_id],
        [ui.t("work.next"), p.allowed_next_states.join(", ") || "—"],
        [ui.t("work.open_data"), p.open_data ? ui.t("yes") : ui.t("no")],
      ])),
      ui.h("div.actions", { id: "product-actions" }, moves.map((a) => ["reject", "suspend", "delist"].includes(a)
        ? withReason(ui, out, ui.t(`work.do.${a}`), async (reason) => render(await api.post(`/products/${p.id}/${a}`, { reason })), { id: `product-${a}` })
        : act(ui, out, ui.t(`work.do.${a}`), async () => render(await api.post(`/products/${p.id}/${a}`, {})), { id: `product-${a}` }))),
      out,
      ui.h("h2", {}, ui.t("product.quality")),
      ui.h("div.card.scroll", { id: "quality" }, dims.length ? ui.h("table", {},
        ui.h("tr", {}, ui.h("th", {}, ui.t("quality.dimension")), ui.h("th", {}, ui.t("quality.score")), ui.h("th", {}, ui.t("quality.method"))),
        dims.map((d) => ui.h("tr", {}, ui.h("td", {}, d.name ?? d.dimension), ui.h("td", {}, d.score), ui.h("td", {}, d.method)))) : ui.json(p.quality)),
      ui.h("h2", {}, ui.t("product.offers")),
      p.offers.map((o) => ui.h("section.card.offer", { "data-offer": o.id }, ui.h("h3", {}, o.id), ui.facts(ui.termRows(o.terms)),
        o.exposure ? ui.h("p.hint", {}, `${ui.t("work.exposure")}: ${Object.entries(o.exposure).map(([k, v]) => `${k} → ${typeof v === "object" ? [v.grade, v.level].filter(Boolean).join(" ") || JSON.stringify(v) : v}`).join("; ")}`) : null)),
    );
  };
  ui.guarded(box, async () => render(await api.get(`/products/${enc(id)}`)));
}

// -- statement (issue 12 item 9) -----------------------------------------------------------

function statement(ui, id) {
  if (ui.needSignIn()) return;
  const box = ui.h("div", { id: "statement" });
  ui.show(box);
  ui.guarded(box, async () => {
    const s = await api.get(`/settlement/statements/${enc(id)}`);
    const st = s.statement;
    const check = ui.h("div", { id: "statement-check" });
    ui.fill(box,
      ui.h("h1", {}, `${ui.t("work.statement")} ${st.statement}`),
      ui.h("div.actions.noprint", {},
        ui.h("button", { type: "button", id: "print", on: { click: () => window.print() } }, ui.t("work.print")),
        act(ui, check, ui.t("work.verify_statement"), async () => ui.fill(check, await verifyStatement(ui, s)), { id: "verify-statement" })),
      ui.h("div.card", {}, ui.facts([
        [ui.t("work.party"), st.party], [ui.t("work.period"), `${st.period} (${st.start} — ${st.end})`],
        [ui.t("work.owes"), ui.h("strong", { id: "statement-owes" }, yuan(st.owes_fen))],
        [ui.t("work.earns"), ui.h("strong", { id: "statement-earns" }, yuan(st.earns_fen))],
        [ui.t("work.format"), st.format],
      ])),
      ui.h("h2", {}, ui.t("work.lines")),
      st.lines.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "statement-lines",
        ["work.invoice", "work.contract", "work.role", "work.amount"],
        st.lines.map((l) => [l.invoice, l.contract, l.role, ui.h("span.num", {}, yuan(l.amount_fen))])),
      (st.ceilings ?? []).length ? [ui.h("h2", {}, ui.t("work.ceilings")), table(ui, "statement-ceilings",
        ["work.authorisation", "work.ceiling", "work.income", "work.excess", "work.carried_in", "work.deducted", "work.carried_out"],
        st.ceilings.map((c) => [c.authorisation, c.ceiling_fen == null ? "—" : yuan(c.ceiling_fen), yuan(c.income_fen), yuan(c.excess_fen),
          yuan(c.carried_in_fen), yuan(c.deducted_fen), yuan(c.carried_out_fen)]))] : null,
      ui.h("h2", {}, ui.t("work.seal")),
      ui.h("div.card", { id: "statement-seal" }, ui.facts([
        ["SHA-256", ui.h("code", { id: "statement-hash" }, s.hash)], [ui.t("work.signature"), ui.h("code", {}, s.sig)],
        ["kid", s.kid], [ui.t("work.ledger_entry"), String(s.ledger_seq)],
      ]), ui.h("p.hint", {}, ui.t("work.seal_note"))),
      check,
      ui.h("details.noprint", {}, ui.h("summary", {}, "JSON"), ui.json(s)),
    );
  });
}

// The statement's seal checked here: SHA-256 of its JCS is `hash`, and `sig` is the Ed25519
// signature of that JCS by the ledger key `kid` (GET /ledger/keys), as specs/settlement.md says.
async function verifyStatement(ui, s) {
  const bytes = utf8(canonicalJson(s.statement));
  const found = hex(await sha256(bytes));
  const fail = (check, expected, got) => ui.h("div.failed", { id: "verdict", "data-verdict": "failed", "data-check": check },
    ui.h("strong", {}, `✘ ${ui.t("verify.failed")}`), ` ${check}: ${ui.t("work.expected")} ${expected}, ${ui.t("work.found")} ${got}`);
  if (found !== s.hash) return fail("hash", s.hash, found);
  const keys = await ledgerKeys(await api.get("/ledger/keys", { auth: false }));
  if (!keys[s.kid]) return fail("kid", Object.keys(keys).join(", "), s.kid);
  let sig;
  try {
    sig = b64urlDecode(s.sig);
  } catch {
    return fail("signature", "base64url", s.sig);
  }
  const ok = sig.length === 64 && (await crypto.subtle.verify({ name: "Ed25519" }, keys[s.kid].key, sig, bytes));
  if (!ok) return fail("signature", `${ui.t("work.valid_sig")} ${s.kid}`, s.sig.slice(0, 16) + "…");
  return ui.h("div.verified", { id: "verdict", "data-verdict": "verified" }, ui.h("strong", {}, `✔ ${ui.t("verify.ok")}`), ` ${ui.t("work.statement_ok", { kid: s.kid })}`);
}

// -- holder ------------------------------------------------------------------------------------

function holder(ui) {
  if (ui.needSignIn()) return;
  const me = api.current().participant;
  const resources = ui.h("div", { id: "holder-resources" });
  const auths = ui.h("div", { id: "holder-authorisations" });
  const queue = ui.h("div", { id: "approval-queue" });
  const grant = ui.h("div", { id: "grant" });
  ui.show(
    ui.h("h1", {}, ui.t("work.holder")),
    ui.h("h2", {}, ui.t("work.my_resources")), resources,
    ui.h("h2", {}, ui.t("work.approval_queue")), ui.h("p.hint", {}, ui.t("work.approval_note")), queue,
    ui.h("h2", {}, ui.t("work.my_authorisations")), auths,
    ui.h("h2", {}, ui.t("work.grant")), grant,
    statements(ui, me),
  );
  const loadQueue = () => ui.guarded(queue, async () => {
    const waiting = (await api.all("/contracts?role=holder&state=REQUESTED", { limit: 200 })).filter((c) => c.holder_approval?.required && c.holder_approval.holder === me
      && !c.holder_approval.approved_at && c.state === "REQUESTED");
    const out = ui.h("div", { id: "approval-result" });
    ui.fill(queue, waiting.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "approvals",
      ["work.contract", "work.product", "work.consumer", "contract.purpose", "work.actions"],
      waiting.map((c) => [ui.h("a", { href: `#/contract/${c.id}` }, c.id), c.product_id, c.consumer_id, c.purpose,
        ui.h("span.actions", {}, act(ui, out, ui.t("work.do.approve"), async () => { await api.post(`/contracts/${c.id}/approve`, {}); loadQueue(); }, { "data-approve": c.id }),
          withReason(ui, out, ui.t("work.do.refuse"), async (reason) => { await api.post(`/contracts/${c.id}/refuse`, { reason }); loadQueue(); }, { "data-refuse": c.id }))])), out);
  });
  const loadAuths = () => ui.guarded(auths, async () => {
    const mine = (await api.all("/authorisations", { limit: 500 })).filter((a) => a.holder_id === me);
    const out = ui.h("div", { id: "revoke-result" });
    ui.fill(auths, mine.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "authorisation-list",
      ["work.authorisation", "work.operator", "work.resources", "work.fee_cap", "contract.period", "product.status", "work.actions"],
      mine.map((a) => [a.id, a.operator_id, a.resource_ids.join(", "), yuan(a.fee_cap_fen), `${a.not_before} — ${a.not_after}`,
        tag(ui, a.status, { "data-authorisation-status": a.id }),
        a.allowed_actions.includes("revoke") ? withReason(ui, out, ui.t("work.do.revoke"), async (reason) => {
          await api.post(`/authorisations/${a.id}/revoke`, { reason });
          loadAuths();
        }, { "data-revoke": a.id }) : "—"])), out);
  });
  ui.guarded(resources, async () => {
    const list = await api.all("/resources", { limit: 500 });
    ui.fill(resources, list.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "resource-list",
      ["work.resource", "product.grade", "product.status", "work.code", "work.registration"],
      list.map((r) => [ui.h("a", { href: `#/resource/${r.id}` }, r.name), [r.grade, r.level].filter(Boolean).join(" / "), tag(ui, r.status),
        r.code ?? "—", r.registration ? `${r.registration.kind}: ${r.registration.state}` : "—"])));
    const coded = list.filter((r) => r.status === "coded");
    ui.fill(grant, grantForm(ui, coded, loadAuths));
  });
  loadQueue();
  loadAuths();
}

function grantForm(ui, coded, done) {
  const out = ui.h("div", { id: "grant-result" });
  const operator = ui.h("input", { name: "operator_id", placeholder: "prt_…", required: true, id: "grant-operator" });
  const picks = coded.map((r) => ui.h("label", {}, `${r.name} (${r.grade})`, ui.h("input", { type: "checkbox", name: "resource", value: r.id, "data-resource": r.id })));
  const until = ui.h("input", { name: "not_after", type: "date", id: "grant-until", required: true, value: `${new Date().getUTCFullYear() + 1}-12-31` });
  const cap = ui.h("input", { name: "fee_cap", type: "number", min: 0, step: "0.01", id: "grant-cap", required: true, value: 1000 });
  const share = ["holder", "operator", "platform"].map((k, i) => ui.h("label", {}, `${ui.t(`work.share.${k}`)} %`,
    ui.h("input", { type: "number", min: 0, max: 100, name: `share_${k}`, value: [40, 50, 10][i] })));
  const kinds = ["api", "file", "compute"].map((k) => ui.h("label", {}, k, ui.h("input", { type: "checkbox", name: "kind", value: k, checked: true })));
  return ui.h("form.card", { id: "grant-form", on: { submit: async (e) => {
    e.preventDefault();
    await ui.guarded(out, async () => {
      const value = (label) => label.querySelector("input");
      const a = await api.post("/authorisations", {
        operator_id: operator.value.trim(),
        resource_ids: picks.map(value).filter((x) => x.checked).map((x) => x.value),
        not_after: `${until.value}T00:00:00Z`,
        fee_cap_fen: toFen(cap.value),
        revenue_share: Object.fromEntries(share.map((l, i) => [["holder", "operator", "platform"][i], Number(value(l).value)])),
        product_kinds: kinds.map(value).filter((x) => x.checked).map((x) => x.value),
      });
      ui.fill(out, ui.h("p.verified", { id: "granted", "data-authorisation": a.id }, ui.t("work.granted", { id: a.id })));
      done();
    });
  } } },
  ui.h("div.filters", {}, ui.h("label", {}, ui.t("work.operator"), operator), ui.h("label", {}, ui.t("work.until"), until), ui.h("label", {}, ui.t("work.fee_cap_yuan"), cap)),
  ui.h("div.filters", {}, ui.h("span", {}, ui.t("work.resources")), picks.length ? picks : ui.h("span.hint", {}, ui.t("work.no_coded"))),
  ui.h("div.filters", {}, share, ui.h("span", {}, ui.t("work.kinds")), kinds),
  ui.h("button", { type: "submit", id: "grant-submit" }, ui.t("work.do.grant")), out);
}

// A resource's registrations and, once coded, its certificate (a gateway-signed JWS).
function resource(ui, id) {
  if (ui.needSignIn()) return;
  const box = ui.h("div");
  ui.show(box);
  ui.guarded(box, async () => {
    const r = await api.get(`/resources/${enc(id)}`);
    const regs = await api.get(`/resources/${enc(id)}/registrations`);
    const cert = ui.h("div", { id: "certificate" });
    ui.fill(box,
      ui.h("h1", {}, r.name),
      ui.h("div.card", {}, ui.facts([
        [ui.t("product.grade"), [r.grade, r.level].filter(Boolean).join(" / ")], [ui.t("product.domain"), r.domain],
        [ui.t("product.status"), tag(ui, r.status)], [ui.t("work.code"), r.code ?? "—"], [ui.t("work.version"), String(r.version)],
        [ui.t("work.rows"), r.row_count ?? "—"], [ui.t("work.commitment"), ui.h("code", {}, r.dataset_commitment)],
      ])),
      ui.h("h2", {}, ui.t("work.registrations")),
      table(ui, "registrations", ["work.registration", "work.kind", "product.status", "work.publicity", "work.code", "work.actions"],
        regs.map((g) => [g.id, g.kind, tag(ui, g.state), g.publicity_ends_at ? `${g.publicity_starts_at} — ${g.publicity_ends_at}` : "—", g.code ?? "—",
          g.state === "coded" ? act(ui, cert, ui.t("work.certificate"), async () => {
            const c = await api.get(`/registrations/${g.id}/certificate`);
            ui.fill(cert, ui.h("div.card", {}, ui.h("h3", {}, ui.t("work.certificate")), ui.facts(Object.entries(c.payload).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)])),
              ui.h("p.hint", {}, `kid ${c.kid}`), ui.h("details", {}, ui.h("summary", {}, "JWS"), ui.h("pre", {}, c.certificate))));
          }, { "data-certificate": g.id }) : "—"])),
      cert,
    );
  });
}

// -- admin -------------------------------------------------------------------------------------

const REG_STEPS = ["accept", "review", "publicise", "code"];

function admin(ui) {
  if (ui.needSignIn()) return;
  const people = ui.h("div", { id: "participants" });
  const regs = ui.h("div", { id: "registration-queue" });
  const products = ui.h("div", { id: "product-queue" });
  const listed = ui.h("div", { id: "listed-products" });
  const onboard = ui.h("div", { id: "onboard" });
  ui.show(
    ui.h("h1", {}, ui.t("work.admin")),
    ui.h("h2", {}, ui.t("work.onboarding")), onboard,
    ui.h("h2", {}, ui.t("work.registration_queue")), regs,
    ui.h("h2", {}, ui.t("work.product_queue")), products,
    ui.h("h2", {}, ui.t("work.suspensions")), ui.h("h3", {}, ui.t("work.participants")), people,
    ui.h("h3", {}, ui.t("work.products_live")), listed,
  );
  const loadPeople = () => ui.guarded(people, async () => {
    const out = ui.h("div", { id: "participant-result" });
    const list = await api.all("/participants", { limit: 500 });
    ui.fill(people, table(ui, "participant-list", ["work.participant", "work.name", "work.roles", "product.status", "work.actions"],
      list.map((p) => [p.id, p.name, p.roles.join(", "), tag(ui, p.status, { "data-participant-status": p.id }),
        p.allowed_actions.map((a) => withReason(ui, out, ui.t(`work.do.${a}`), async (reason) => {
          await api.post(`/participants/${p.id}/${a}`, { reason });
          loadPeople();
        }, { [`data-${a}`]: p.id }))])), out);
  });
  const loadRegs = () => ui.guarded(regs, async () => {
    const out = ui.h("div", { id: "registration-result" });
    const open = (await api.all("/registrations", { limit: 500 })).filter((g) => !["coded", "rejected"].includes(g.state));
    ui.fill(regs, open.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "registrations", ["work.registration", "work.resource", "work.kind", "product.status", "work.publicity", "work.actions"],
      open.map((g) => {
        const window = ui.h("input", { type: "number", min: 0, name: "window", value: 1, "aria-label": ui.t("work.window"), title: ui.t("work.window") });
        return [g.id, g.resource_id, g.kind, tag(ui, g.state, { "data-registration-state": g.id }),
          g.publicity_ends_at ? `→ ${g.publicity_ends_at}` : "—",
          ui.h("span.actions", {}, g.allowed_actions.filter((a) => REG_STEPS.includes(a)).map((a) => [a === "publicise" ? ui.h("label", {}, ui.t("work.window"), window) : null,
            act(ui, out, ui.t(`work.do.${a}`), async () => {
              await api.post(`/registrations/${g.id}/${a}`, a === "publicise" ? { window_seconds: Number(window.value) } : undefined);
              loadRegs();
            }, { [`data-${a}`]: g.id })]),
          g.allowed_actions.includes("reject") ? withReason(ui, out, ui.t("work.do.reject"), async (reason) => { await api.post(`/registrations/${g.id}/reject`, { reason }); loadRegs(); }, { "data-reject": g.id }) : null)];
      })), out);
  });
  const loadProducts = () => {
    ui.guarded(products, async () => {
      const out = ui.h("div", { id: "review-result" });
      const list = await api.all("/products?status=review", { limit: 200 });
      ui.fill(products, list.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "review-list", ["work.product", "product.merchant", "product.grade", "work.actions"],
        list.map((p) => [ui.h("a", { href: `#/work-product/${p.id}` }, p.name), p.merchant_id, [p.grade, p.level].filter(Boolean).join(" / "),
          ui.h("span.actions", {}, act(ui, out, ui.t("work.do.list"), async () => { await api.post(`/products/${p.id}/list`, {}); loadProducts(); }, { "data-list": p.id }),
            withReason(ui, out, ui.t("work.do.reject"), async (reason) => { await api.post(`/products/${p.id}/reject`, { reason }); loadProducts(); }, { "data-reject": p.id }))])), out);
    });
    ui.guarded(listed, async () => {
      const out = ui.h("div", { id: "suspend-result" });
      const list = [...(await api.all("/products?status=listed", { limit: 200 })), ...(await api.all("/products?status=suspended", { limit: 200 }))];
      ui.fill(listed, list.length === 0 ? ui.h("p", {}, ui.t("work.none")) : table(ui, "live-list", ["work.product", "product.merchant", "product.status", "work.actions"],
        list.map((p) => [ui.h("a", { href: `#/work-product/${p.id}` }, p.name), p.merchant_id, tag(ui, p.status, { "data-product-status": p.id }),
          withReason(ui, out, ui.t(p.status === "listed" ? "work.do.suspend" : "work.do.reinstate"), async (reason) => {
            await api.post(`/products/${p.id}/${p.status === "listed" ? "suspend" : "reinstate"}`, { reason });
            loadProducts();
          }, { [p.status === "listed" ? "data-suspend" : "data-reinstate"]: p.id })])), out);
    });
  };
  ui.fill(onboard, onboardForm(ui, loadPeople));
  loadPeople();
  loadRegs();
  loadProducts();
}

const ROLES = ["holder", "operator", "merchant", "consumer", "auditor", "voucher_issuer"];

function onboardForm(ui, done) {
  const out = ui.h("div", { id: "onboard-result" });
  const name = ui.h("input", { name: "name", required: true, id: "onboard-name" });
  const uscc = ui.h("input", { name: "uscc", required: true, minlength: 18, maxlength: 18, id: "onboard-uscc" });
  const region = ui.h("select", { name: "region", id: "onboard-region" }, ["domestic", "foreign"].map((r) => ui.h("option", { value: r }, r)));
  const roles = ROLES.map((r) => ui.h("label", {}, r, ui.h("input", { type: "checkbox", name: "role", value: r })));
  const key = ui.h("input", { type: "file", id: "onboard-key", accept: ".jwk,.json,application/json" });
  return ui.h("form.card", { id: "onboard-form", on: { submit: async (e) => {
    e.preventDefault();
    await ui.guarded(out, async () => {
      const file = key.files[0];
      if (!file) throw new Error(ui.t("work.need_public_key"));
      const jwk = JSON.parse(await file.text());
      const { d: _private, ...pub } = jwk; // only the public half is ever sent
      const p = await api.post("/participants", {
        name: name.value.trim(), uscc: uscc.value.trim(), region: region.value,
        roles: roles.map((l) => l.querySelector("input")).filter((x) => x.checked).map((x) => x.value),
        jwks: { keys: [pub] },
      });
      key.value = "";
      ui.fill(out, ui.h("p.verified", { id: "onboarded", "data-participant": p.id }, ui.t("work.onboarded", { id: p.id })));
      done();
    });
  } } },
  ui.h("p.hint", {}, ui.t("work.onboard_note")),
  ui.h("div.filters", {}, ui.h("label", {}, ui.t("work.name"), name), ui.h("label", {}, "USCC", uscc), ui.h("label", {}, ui.t("work.region"), region),
    ui.h("label", {}, ui.t("work.public_key"), key)),
  ui.h("div.filters", {}, ui.h("span", {}, ui.t("work.roles")), roles),
  ui.h("button", { type: "submit", id: "onboard-submit" }, ui.t("work.do.onboard")), out);
}

// Pages by the fragment's first segment: app.js calls page(ui, id, params).
export const workPages = {
  merchant, draft, "work-product": workProduct, statement, holder, resource, admin,
};
