// The consumer's compute queries (specs/compute.md, specs/portal.md §2): on a FINALIZED contract
// whose offer carries compute terms, a form built from those terms only (the offered aggregates,
// the declared group keys, filter values and ranges), sent as POST /exchanges {delivery:
// "compute"}; the reply's noisy groups, its noise and 95 % error bounds, the ε it spent and the
// privacy budget left on the contract and on the consumer × resource, and its receipt checked as
// a pull's is (app.js lends `receiptSection`). A refusal is the API's problem, its reasons in
// words. The budget left is read from GET /contracts/{id}/privacy-budget when the panel opens,
// before any query, and again after each reply or refusal; should that read fail, the page
// says so (the API's problem) and shows the last reply's budget of this sign-in, if any.
//
// app.js hands in its page helpers (`ui`: h, t, fill, facts, guarded, problemBox, receiptSection).

import * as api from "./api.js";

const lastPrivacy = new Map(); // contract id -> the `privacy` block of its latest reply, this sign-in only

export function forget() {
  lastPrivacy.clear();
}

// Whether a contract's offer allows compute: its signed document carries compute terms.
export function offersCompute(c) {
  return Boolean(c.document?.offer?.compute);
}

// An offer's compute terms in words: the aggregates, then each column with its rule and what it
// declares (values, ranges, bounds, bins), the subject and the per-query limits.
export function termsText(terms, t) {
  const cols = Object.entries(terms.columns ?? {}).map(([name, col]) => {
    const parts = [];
    if (col.values) parts.push(col.values.join("/"));
    if (col.ranges) parts.push(col.ranges.map((r) => `[${r[0]}, ${r[1]})`).join(" "));
    if (col.lower != null && col.upper != null) parts.push(`[${col.lower}, ${col.upper}]`);
    if (col.bins) parts.push(`${t("compute.bins")} ${col.bins.join(", ")}`);
    return `${name}: ${t(`compute.rule.${col.rule}`)}${parts.length ? ` (${parts.join("; ")})` : ""}`;
  });
  return [
    (terms.aggregates ?? []).map((op) => t(`compute.op.${op}`)).join(", "),
    ...cols,
    t("compute.limits", { subject: terms.subject ?? t("compute.row"), k: terms.max_rows_per_subject ?? 1, keys: terms.max_group_keys ?? 2, filters: terms.max_filters ?? 2 }),
  ].join(" · ");
}

const NEEDS = { sum: "bounds", mean: "bounds", quantile: "bins", histogram: "bins" };

function columnsFor(terms, op) {
  return Object.entries(terms.columns ?? {}).filter(([, col]) => {
    if (!["plaintext", "aggregate"].includes(col.rule)) return false;
    return NEEDS[op] === "bounds" ? col.lower != null && col.upper != null : Array.isArray(col.bins) && col.bins.length > 1;
  }).map(([name]) => name);
}

const keyColumns = (terms) => Object.entries(terms.columns ?? {})
  .filter(([, col]) => ["plaintext", "group_key"].includes(col.rule) && (col.values ?? []).length > 0).map(([name]) => name);

// Every declared filter: a value (eq) or a range [lower, upper) of a plaintext or group-key column.
function filterChoices(terms) {
  const out = [];
  for (const [name, col] of Object.entries(terms.columns ?? {})) {
    if (!["plaintext", "group_key"].includes(col.rule)) continue;
    for (const v of col.values ?? []) out.push({ label: `${name} = ${v}`, filter: { field: name, eq: String(v) } });
    for (const r of col.ranges ?? []) out.push({ label: `${name} ∈ [${r[0]}, ${r[1]})`, filter: { field: name, range: r } });
  }
  return out;
}

function budgetFacts(ui, privacy, prefix = "", more = []) {
  const { t } = ui;
  const scope = (id, b) => ui.h("span", { id: `${prefix}${id}`, "data-remaining": b.remaining },
    t("compute.budget_of", { remaining: num(b.remaining), spent: num(b.spent), budget: num(b.budget) }));
  return ui.facts([
    [t("compute.budget_contract"), scope("budget-contract", privacy.contract)],
    [t("compute.budget_subject"), scope("budget-subject", privacy.subject_resource)],
    ...more,
  ]);
}

const num = (x) => (typeof x === "number" ? String(Math.round(x * 1e6) / 1e6) : "—");

function cell(value) {
  if (value && typeof value === "object" && Array.isArray(value.counts)) {
    return value.counts.map((n, j) => `[${value.edges[j]}, ${value.edges[j + 1]}): ${n}`).join("; ");
  }
  return typeof value === "number" ? num(value) : String(value ?? "—");
}

// The API's problem, and each of its reasons in words (title, detail, what it means here).
function refusal(ui, err) {
  const { h, t } = ui;
  const reasons = [].concat(err?.problem?.reasons ?? []).filter((r) => r && typeof r === "object");
  if (!reasons.length) return ui.problemBox(err);
  // The problem's detail is its reasons' details joined: shown once, with each reason.
  const bare = new api.ApiProblem(err.status, { ...err.problem, reasons: undefined, detail: undefined });
  return h("div", { id: "compute-refusal" }, ui.problemBox(bare), h("ul.reasons", {}, reasons.map((r) => {
    const known = `compute.reason.${r.code}`;
    const words = ui.hasWord(known) ? t(known) : null;
    return h("li", { "data-reason": r.code ?? "" }, h("strong", {}, r.title ?? r.code), r.detail ? ` — ${r.detail}` : "",
      words ? h("div.hint", {}, words) : null, h("div.ptype", {}, r.code ?? ""));
  })));
}

// The compute form and its result area for contract `c` (the consumer's, FINALIZED).
export function computePanel(ui, c) {
  const { h, t } = ui;
  const terms = c.document.offer.compute;
  const offered = terms.aggregates ?? ["count"];
  const out = h("div", { id: "compute-result" });
  const budget = h("div", { id: "compute-budget" });
  // The budget as the policy sets it now (GET …/privacy-budget), else the last reply's.
  const showBudget = async () => {
    let b;
    try {
      b = await api.get(`/contracts/${encodeURIComponent(c.id)}/privacy-budget`);
    } catch (err) {
      const p = lastPrivacy.get(c.id);
      ui.fill(budget, h("p.hint", { id: "compute-budget-unknown" }, t("compute.budget_unreadable")), ui.problemBox(err),
        p ? [h("p.hint", {}, t("compute.budget_last")), budgetFacts(ui, p, "last-")] : null);
      return;
    }
    ui.fill(budget, h("p.hint", {}, t("compute.budget_now")), budgetFacts(ui, b, "now-", [
      [t("compute.eps_per_query"), num(b.epsilon_per_query)],
      [t("compute.queries_left"), h("span", { id: "budget-queries-left", "data-n": b.queries_left }, String(b.queries_left))],
    ]));
  };
  showBudget();

  const count = h("input", { type: "checkbox", id: "compute-count", checked: offered.includes("count"), disabled: !offered.includes("count") });
  const others = offered.filter((op) => op !== "count");
  const op = h("select", { id: "compute-op", name: "op" }, h("option", { value: "" }, t("compute.none")),
    others.map((o) => h("option", { value: o }, t(`compute.op.${o}`))));
  const field = h("select", { id: "compute-field", name: "field" });
  const quantiles = h("input", { id: "compute-quantiles", name: "quantiles", value: "0.5", inputmode: "decimal" });
  const quantilesLabel = h("label", { hidden: true }, t("compute.quantiles"), quantiles);
  const syncFields = () => {
    const names = op.value ? columnsFor(terms, op.value) : [];
    ui.fill(field, names.map((n) => h("option", { value: n }, n)));
    field.disabled = !op.value;
    quantilesLabel.hidden = op.value !== "quantile";
  };
  op.addEventListener("change", syncFields);
  syncFields();

  const keys = keyColumns(terms).map((name) => h("label.check", {}, h("input", { type: "checkbox", name: "group_by", value: name }), name));
  const choices = filterChoices(terms);
  const filter = h("select", { id: "compute-filter", name: "filter" }, h("option", { value: "" }, t("compute.no_filter")),
    choices.map((ch, i) => h("option", { value: String(i) }, ch.label)));

  const run = async (e) => {
    e.preventDefault();
    const aggregates = [];
    if (count.checked) aggregates.push({ op: "count" });
    if (op.value) {
      const a = { op: op.value, field: field.value };
      if (op.value === "quantile") a.quantiles = quantiles.value.split(/[,,\s]+/).filter(Boolean).map(Number);
      aggregates.push(a);
    }
    const body = { contract_id: c.id, purpose: c.purpose, delivery: "compute", aggregates };
    const groupBy = keys.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (groupBy.length) body.group_by = groupBy;
    if (filter.value !== "") body.filters = [choices[Number(filter.value)].filter];
    ui.fill(out, h("p.hint", {}, t("loading")));
    let x;
    try {
      x = await api.post("/exchanges", body);
    } catch (err) {
      ui.fill(out, refusal(ui, err));
      showBudget();
      return;
    }
    lastPrivacy.set(c.id, x.privacy);
    showBudget();
    ui.fill(out, reply(ui, x));
    ui.refreshUsage?.(c);
  };

  return h("section.card", { id: "compute" },
    h("h2", {}, t("compute.title")),
    h("p.hint", {}, t("compute.note")),
    budget,
    h("form.filters", { id: "compute-form", on: { submit: run } },
      h("label.check", {}, count, t("compute.count")),
      h("label", {}, t("compute.aggregate"), op),
      h("label", {}, t("compute.field"), field),
      quantilesLabel,
      keys.length ? h("fieldset", {}, h("legend", {}, t("compute.group_by")), keys) : null,
      choices.length ? h("label", {}, t("compute.filter"), filter) : null,
      h("button", { type: "submit", id: "compute-run" }, t("compute.run"))),
    out);
}

function reply(ui, x) {
  const { h, t } = ui;
  const p = x.privacy;
  const columns = x.fields ?? Object.keys(x.rows[0] ?? {});
  return h("section", { id: "compute-reply" },
    h("h3", {}, t("compute.results")),
    x.rows.length === 0
      ? h("p.message", { id: "compute-empty" }, t("compute.empty", { min: p.min_group_size }))
      : h("div.scroll", {}, h("table", { id: "compute-rows" },
        h("tr", {}, columns.filter((k) => k !== "_watermark").map((k) => h("th", {}, k === "_count" ? t("compute.count") : k))),
        x.rows.map((r) => h("tr", {}, columns.filter((k) => k !== "_watermark").map((k) => h("td", {}, cell(r[k]))))))),
    h("p.hint", {}, t("compute.threshold", { min: p.min_group_size })),
    h("h3", {}, t("compute.privacy")),
    ui.facts([
      [t("compute.eps_spent"), h("span", { id: "eps-spent" }, num(p.epsilon_spent))],
      [t("compute.eps_per_query"), num(p.epsilon_per_query)],
    ]),
    budgetFacts(ui, p),
    h("h3", {}, t("compute.noise")),
    h("div.scroll", {}, h("table", { id: "compute-noise" },
      h("tr", {}, ["compute.measure", "compute.mechanism", "compute.epsilon", "compute.scale", "compute.error"].map((k) => h("th", {}, t(k)))),
      p.noise.map((n) => h("tr", {}, h("td", {}, n.measure), h("td", {}, t(`compute.mech.${n.mechanism}`)), h("td", {}, num(n.epsilon)),
        h("td", {}, num(n.scale)), h("td", {}, `± ${num(n.error_95)}`))))),
    h("p.hint", {}, t("compute.error_note")),
    ui.receiptSection(x),
  );
}
