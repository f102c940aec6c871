// The marginrank dashboard: renders GET /ui/readout.json and drives POST /ui/preview.
// Every figure cell carries the raw JSON number in data-value (and what it is in data-arm,
// data-metric, data-field), so what the page shows can be checked against the JSON.
"use strict";

const RATES = new Set(["ctr", "add_to_cart_rate", "conversion", "return_rate"]);

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(metric, value) {
  if (value === null || value === undefined) return "n/a";
  if (RATES.has(metric)) return (100 * value).toFixed(2) + "%";
  return value.toFixed(3);
}

function pct(value) {
  if (value === null || value === undefined) return "n/a";
  return (value >= 0 ? "+" : "") + (100 * value).toFixed(2) + "%";
}

function header(table, names) {
  const row = el("tr");
  for (const name of names) row.append(el("th", { class: name.cls }, name.text ?? name));
  table.tHead.replaceChildren(row);
}

function numberCell(value, text, data) {
  return el("td", { "data-value": value === null ? "null" : value, ...data }, text);
}

function renderReadout(body) {
  const status = document.getElementById("status");
  const readout = body.readout;
  status.dataset.state = readout ? "ready" : "empty";
  status.textContent = `experiment: ${body.experiment ?? "none running"} · weights ` +
    `${body.config_version}` + (body.events_dir ? ` · events: ${body.events_dir}` : "");
  const summary = document.getElementById("readout-summary");
  if (!readout) {
    summary.textContent = body.reason || "no readout";
    return;
  }
  summary.textContent = `${readout.first_day} to ${readout.last_day}; control: ` +
    `${readout.control}; non-inferiority δ ${readout.delta} (the weights' max_ndcg_drop); ` +
    `sample ratio p = ${readout.srm.p_value.toPrecision(3)}`;
  summary.dataset.control = readout.control;

  const flagList = document.getElementById("flags");
  flagList.replaceChildren(...body.flags.map((f) =>
    el("li", { "data-level": f.level, "data-arm": f.arm, "data-metric": f.metric }, f.text)));

  const metrics = Object.keys(readout.arms[0]?.metrics ?? {});
  const arms = document.getElementById("arms");
  header(arms, [{ text: "arm", cls: "text" }, "customers", "searches", "clicks",
    ...metrics.map((m) => readout.metrics[m])]);
  arms.tBodies[0].replaceChildren(...readout.arms.map((arm) => {
    const row = el("tr", { "data-arm": arm.arm });
    row.append(el("td", { class: "text" }, arm.arm));
    for (const field of ["customers", "searches", "clicks"]) {
      row.append(numberCell(arm[field], arm[field].toLocaleString("en-US"),
        { "data-arm": arm.arm, "data-field": field }));
    }
    for (const m of metrics) {
      const value = arm.metrics[m].value;
      row.append(numberCell(value, fmt(m, value), { "data-arm": arm.arm, "data-metric": m }));
    }
    return row;
  }));

  const lifts = document.getElementById("lifts");
  header(lifts, [{ text: "arm", cls: "text" }, { text: "metric", cls: "text" }, "control",
    "arm value", "lift", "95% interval", "p", "MDE", "verdict"]);
  const rows = [];
  for (const comparison of readout.comparisons) {
    for (const [m, lf] of Object.entries(comparison.lifts)) {
      const verdict = comparison.verdicts[m];
      const data = { "data-arm": comparison.arm, "data-metric": m };
      const row = el("tr", data);
      row.append(el("td", { class: "text" }, comparison.arm),
        el("td", { class: "text" }, readout.metrics[m]),
        numberCell(lf.control, fmt(m, lf.control), { ...data, "data-field": "control" }),
        numberCell(lf.treatment, fmt(m, lf.treatment), { ...data, "data-field": "treatment" }),
        numberCell(lf.lift, pct(lf.lift), { ...data, "data-field": "lift" }),
        el("td", { ...data, "data-field": "interval", "data-low": lf.lift_low,
          "data-high": lf.lift_high }, `[${pct(lf.lift_low)}, ${pct(lf.lift_high)}]`),
        numberCell(lf.p_value, lf.p_value === null ? "n/a" : lf.p_value.toPrecision(3),
          { ...data, "data-field": "p_value" }),
        numberCell(lf.mde_relative, pct(lf.mde_relative), { ...data, "data-field": "mde" }),
        el("td", { ...data, "data-field": "verdict", "data-verdict": verdict?.status },
          verdict ? verdict.status : ""));
      rows.push(row);
    }
  }
  lifts.tBodies[0].replaceChildren(...rows);

  if (body.plot) {
    const img = document.getElementById("plot");
    img.src = body.plot + "?v=" + encodeURIComponent(readout.last_day + body.config_version +
      readout.arms.map((a) => a.searches).join("-"));
    document.getElementById("plot-figure").hidden = false;
  }
  document.getElementById("notes").replaceChildren(
    ...readout.notes.map((n) => el("li", {}, n)));
}

function renderSide(tableId, side, showMove, terms) {
  const table = document.getElementById(tableId);
  header(table, ["#", { text: "product", cls: "text" }, "score", ...terms,
    ...(showMove ? ["moved"] : [])]);
  table.tBodies[0].replaceChildren(...side.results.map((r) => {
    const row = el("tr", { "data-product": r.product_id, "data-rank": r.rank });
    row.append(el("td", {}, String(r.rank)),
      el("td", { class: "text", title: r.title }, `${r.product_id} · ${r.title}`),
      numberCell(r.score, r.pinned ? "pinned" : r.score.toFixed(3), { "data-field": "score" }));
    for (const term of terms) {
      const v = r.contributions ? r.contributions[term] : null;
      row.append(numberCell(v, v === null ? "" : (v >= 0 ? "+" : "") + v.toFixed(3),
        { "data-term": term }));
    }
    if (showMove) {
      const moved = r.moved;
      const text = moved === null ? "new" : moved === 0 ? "=" : (moved > 0 ? "▲" : "▼") +
        Math.abs(moved);
      row.append(el("td", { "data-field": "moved", "data-value": moved ?? "new",
        class: moved > 0 || moved === null ? "up" : moved < 0 ? "down" : "" }, text));
    }
    return row;
  }));
}

async function runPreview(event) {
  event.preventDefault();
  const errors = document.getElementById("preview-errors");
  errors.replaceChildren();
  const customer = document.getElementById("preview-customer").value.trim();
  const request = {
    query: document.getElementById("preview-query").value,
    customer_id: customer || null,
    k: Number(document.getElementById("preview-k").value),
    weights_yaml: document.getElementById("preview-yaml").value,
  };
  const response = await fetch("/ui/preview", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request),
  });
  const body = await response.json();
  const result = document.getElementById("preview-result");
  if (!response.ok) {
    result.hidden = true;
    const detail = Array.isArray(body.detail) ? body.detail : [{ msg: String(body.detail) }];
    errors.replaceChildren(...detail.map((d) => el("p", {}, d.msg)));
    return;
  }
  document.getElementById("current-version").textContent = `(${body.current.config_version})`;
  document.getElementById("proposed-version").textContent = `(${body.proposed.config_version})`;
  renderSide("current-table", body.current, false, body.terms);
  renderSide("proposed-table", body.proposed, true, body.terms);
  result.hidden = false;
  result.dataset.query = body.query;
}

async function start() {
  document.getElementById("preview-form").addEventListener("submit", runPreview);
  const [readout, config] = await Promise.all([
    fetch("/ui/readout.json").then((r) => r.json()),
    fetch("/ui/config.json").then((r) => r.json()),
  ]);
  document.getElementById("preview-yaml").value = config.weights_yaml ?? "";
  renderReadout(readout);
  document.body.dataset.loaded = "true";
}

start().catch((error) => {
  const status = document.getElementById("status");
  status.dataset.state = "error";
  status.textContent = "could not load: " + error;
});
