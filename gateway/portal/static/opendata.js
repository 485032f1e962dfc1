// The public catalogue of open data (#/open-data, specs/portal.md §2): anyone lists and searches
// it without signing in (GET /open-data); a signed-in participant pulls a product's rows without a
// contract (POST /open-data/{id}/exchanges) and checks the receipt in this browser. app.js routes
// here and lends its DOM helpers and its receipt verdict (`ui`).

import * as api from "./api.js";

const enc = encodeURIComponent;
const PURPOSE = "open-data-reuse";

// The rows of one open pull, and its receipt checked with the gateway's keys (ui.verdict).
function exchange(ui, x) {
  const { h, t, fill, facts, guarded } = ui;
  const columns = x.fields ?? Object.keys(x.rows[0] ?? {});
  const seq = x.receipt?.seq;
  const receiptBox = h("div", { id: "open-receipt-check" });
  return h("section.card", { id: "open-exchange" },
    h("h2", {}, t("exchange.title")),
    facts([
      [t("exchange.rows"), x.row_count],
      [t("exchange.content_hash"), h("code", {}, x.content_hash)],
      [t("exchange.receipt"), h("code", { id: "open-receipt-seq" }, `seq ${seq}`)],
    ]),
    h("div.scroll", {}, h("table", { id: "open-rows" },
      h("tr", {}, columns.map((k) => h("th", {}, k))),
      x.rows.map((r) => h("tr", {}, columns.map((k) => h("td", {}, r[k])))))),
    h("div.actions", {},
      h("button", { type: "button", id: "open-download", on: { click: () => ui.download(`${x.exchange_id}.json`, x) } }, t("contract.download")),
      h("button", { type: "button", id: "open-verify-receipt", on: { click: () => guarded(receiptBox, async () => {
        fill(receiptBox, await ui.verdict(await api.get(`/ledger/receipts/${seq}`)));
      }) } }, t("exchange.get_receipt"))),
    receiptBox,
  );
}

function pullForm(ui, id, out) {
  const { h, t, fill, guarded } = ui;
  const purpose = h("input", { name: "purpose", value: PURPOSE, required: true });
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 1000, value: 10 });
  return h("form.actions", { "data-pull": id, on: { submit: (e) => {
    e.preventDefault();
    guarded(out, async () => {
      const x = await api.post(`/open-data/${enc(id)}/exchanges`, { purpose: purpose.value.trim(), delivery: "api", limit: Number(limit.value) || 10 });
      fill(out, exchange(ui, x));
    });
  } } },
  h("label", {}, t("open.purpose"), " ", purpose), h("label", {}, t("open.limit"), " ", limit),
  h("button", { type: "submit", "data-pull-button": id }, t("open.pull")));
}

export function openData(ui, params) {
  const { h, t, fill, show, guarded } = ui;
  const q = h("input", { name: "q", value: params.get("q") ?? "", "aria-label": t("catalogue.q") });
  const results = h("div", { id: "open-data-results" });
  show(
    h("h1", {}, t("open.title")),
    h("p.hint", {}, t("open.intro")),
    h("form.filters.card", { id: "open-data-search", on: { submit: (e) => {
      e.preventDefault();
      const query = new URLSearchParams();
      if (q.value.trim()) query.set("q", q.value.trim());
      location.hash = `#/open-data?${query}`;
    } } }, h("label", {}, t("catalogue.q"), q), h("button", { type: "submit" }, t("catalogue.search"))),
    results,
  );
  guarded(results, async () => {
    const query = new URLSearchParams();
    if (params.get("q")) query.set("q", params.get("q"));
    query.set("limit", "200");
    const cat = await api.get(`/open-data?${query}`, { auth: false });
    const datasets = cat["dcat:dataset"] ?? [];
    const signedIn = Boolean(api.current());
    fill(results,
      h("p.hint", {}, t("catalogue.total", { n: cat.total ?? datasets.length })),
      datasets.length === 0 ? h("p", { id: "open-data-none" }, t("open.none")) : null,
      signedIn ? null : h("p.hint", { id: "open-data-signin" }, t("open.signin")),
      datasets.map((d) => {
        const id = d["dct:identifier"];
        const out = h("div", { "data-pull-result": id });
        return h("article.card.product", { "data-open-product": id },
          h("h2", {}, h("a", { href: `#/product/${enc(id)}` }, d["dct:title"])),
          h("p", {}, d["dct:description"]),
          ui.facts([
            [t("open.merchant"), d["dsgw:merchant"]?.["foaf:name"] ?? "—"],
            [t("catalogue.domain"), d["dcat:theme"] || "—"],
            [t("open.fields"), (d["dsgw:fields"] ?? []).join(", ") || "—"],
            [t("open.endpoint"), h("code", {}, `POST /open-data/${id}/exchanges`)],
          ]),
          signedIn ? [pullForm(ui, id, out), out] : null,
        );
      }),
    );
  });
}

// An ODRL offer policy (as the catalogue publishes it) read back into the offer's terms, so that
// app.js's `termRows` says them in words as on a signed-in product page.
function termsOfPolicy(policy) {
  const permission = (policy.permission ?? [])[0] ?? {};
  const terms = {};
  for (const c of permission.constraint ?? []) {
    const right = c.rightOperand;
    const value = right && typeof right === "object" && !Array.isArray(right) ? right["@value"] : right;
    const name = String(c.leftOperand ?? "").replace(/^.*#/, "");
    if (name === "purpose") terms.purposes = [].concat(value);
    else if (name === "elapsedTime") terms.term = value;
    else if (name === "count") terms.quota_calls = value;
    else if (name === "rowCount") terms.quota_rows = value;
    else if (name === "field") terms.fields = [].concat(value);
    else if (name === "spatial") terms.region = "domestic";
  }
  const pay = (permission.duty ?? []).flatMap((d) => d.action ?? []).flatMap((a) => a.refinement ?? [])
    .find((r) => r.leftOperand === "payAmount");
  terms.price_fen = pay ? Math.round(Number(pay.rightOperand?.["@value"] ?? 0) * 100) : 0;
  terms.onward_transfer = !(policy.prohibition ?? []).some((p) => p.action === "distribute");
  return terms;
}

// A product's page for a visitor who has not signed in (#/product/{id}): what the open-data
// catalogue already publishes of it (GET /open-data/{id}, no token: a listed open-data product,
// nothing else), its offers read from their ODRL policies, its quality, and "sign in to
// request" where a signed-in participant requests an offer. Any other product is for
// signed-in participants only: the page says so and shows nothing of it.
export function publicProduct(ui, id) {
  const { h, t, fill, show, facts } = ui;
  const box = h("div", { id: "public-product" });
  show(box);
  const signInButton = () => h("button", { type: "button", "data-signin-to-request": "", on: { click: () => {
    const input = document.getElementById("signin-participant");
    input?.scrollIntoView({ block: "center" });
    input?.focus();
  } } }, t("open.signin_to_request"));
  (async () => {
    fill(box, h("p.hint", {}, t("loading")));
    let d;
    try {
      d = await api.get(`/open-data/${enc(id)}`, { auth: false });
    } catch (err) {
      fill(box, err.status === 404
        ? [h("p.message", { role: "alert", id: "public-product-signin" }, t("open.product_signin")), signInButton()]
        : ui.problemBox(err));
      return;
    }
    const quality = d["dqv:hasQualityMeasurement"] ?? [];
    fill(box,
      h("h1", {}, d["dct:title"]),
      h("p", {}, d["dct:description"]),
      h("p.hint", { id: "public-product-note" }, t("open.product_public")),
      h("div.card", {}, facts([
        [t("product.grade"), [d["dsgw:grade"], d["dsgw:level"]].filter(Boolean).join(" / ")],
        [t("product.domain"), d["dcat:theme"] || "—"],
        [t("product.merchant"), d["dsgw:merchant"]?.["foaf:name"] ?? "—"],
        [t("catalogue.delivery"), (d["dcat:distribution"] ?? []).map((x) => x["dsgw:deliveryMode"]).join(", ") || "—"],
        [t("open.fields"), (d["dsgw:fields"] ?? []).join(", ") || "—"],
        [t("open.endpoint"), h("code", {}, `POST /open-data/${d["dct:identifier"]}/exchanges`)],
      ])),
      h("h2", {}, t("product.offers")),
      (d["odrl:hasPolicy"] ?? []).map((policy) => h("section.card.offer", { "data-offer": policy.uid ?? "" },
        h("h3", {}, policy.uid ?? ""),
        facts(ui.termRows(termsOfPolicy(policy))),
        h("div.actions", {}, signInButton()),
        h("details", {}, h("summary", {}, t("product.odrl")), ui.json(policy)),
      )),
      h("h2", {}, t("product.quality")),
      h("div.card.scroll", {}, h("table", { id: "public-quality" },
        h("tr", {}, h("th", {}, t("quality.dimension")), h("th", {}, t("quality.score")), h("th", {}, t("quality.method"))),
        quality.map((m) => h("tr", {}, h("td", {}, m["dct:title"]), h("td", {}, m["dqv:value"]), h("td", {}, m["dsgw:method"]))),
      )),
    );
  })();
}
