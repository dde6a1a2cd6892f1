"use strict";
// One saga: its steps as bars over time (compensations in a second
// colour, the step it is on highlighted), what happened in order, its
// input and outcome, and the controls.
SB.header("sagas");
const id = new URLSearchParams(location.search).get("id") || "";
document.getElementById("title").textContent = "Saga " + id;
const COLORS = { done: "#3b82f6", ok: "#3b82f6", compensated: "#8a4bd1", failed: "#c53030", "timed-out": "#c53030", "compensation-failed": "#c53030", waiting: "#e0a100", running: "#e0a100" };
const SVGNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function chart(h) {
  const box = document.getElementById("chart");
  box.replaceChildren();
  const bars = h.bars || [];
  if (bars.length === 0) { box.append(SB.el("p", { class: "empty" }, "No step has started.")); return; }
  const t0 = new Date(h.instance.startedAt).getTime();
  const now = Date.now();
  let t1 = h.instance.finishedAt && !h.instance.finishedAt.startsWith("0001") ? new Date(h.instance.finishedAt).getTime() : now;
  for (const b of bars) { if (b.end) t1 = Math.max(t1, new Date(b.end).getTime()); }
  const span = Math.max(t1 - t0, 1);
  const W = 1000, left = 210, right = 130, rowH = 28, top = 24;
  const H = top + bars.length * rowH + 30;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "timeline" });
  const x = (t) => left + (W - left - right) * (t - t0) / span;
  for (let k = 0; k <= 4; k++) {
    const t = t0 + span * k / 4, xx = x(t);
    s.append(svg("line", { x1: xx, y1: top - 6, x2: xx, y2: H - 24, stroke: "#e5e7eb" }));
    s.append(svg("text", { x: xx, y: H - 8, "font-size": 11, fill: "#667085", "text-anchor": "middle" }, "+" + (span < 2000 ? (t - t0).toFixed(0) + " ms" : ((t - t0) / 1000).toFixed(1) + " s")));
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const start = new Date(b.start).getTime();
    const end = b.end && !b.end.startsWith("0001") ? new Date(b.end).getTime() : now;
    const w = Math.max(x(end) - x(start), 4);
    const color = b.compensation && b.status === "compensated" ? COLORS.compensated : (COLORS[b.status] || "#94a3b8");
    const label = (b.compensation ? "undo " : "") + b.step + (b.attempts > 1 ? ` ×${b.attempts}` : "");
    s.append(svg("text", { x: left - 8, y: y + 17, "font-size": 12, fill: b.compensation ? "#8a4bd1" : "#1d2330", "text-anchor": "end" }, label));
    const rect = svg("rect", { x: x(start), y: y + 4, width: w, height: rowH - 10, rx: 3, fill: color, class: "bar", "data-step": b.step, "data-compensation": b.compensation ? "true" : "false", "data-status": b.status });
    if (b.status === "waiting" || b.status === "running") { rect.setAttribute("stroke", "#7c5800"); rect.setAttribute("stroke-width", "2"); rect.setAttribute("stroke-dasharray", "4 2"); }
    rect.append(svg("title", {}, `${label}: ${b.status}`));
    s.append(rect);
    s.append(svg("text", { x: x(start) + w + 6, y: y + 17, "font-size": 11, fill: "#667085" }, b.status));
  });
  const o = h.outcome;
  if (o) s.append(svg("text", { x: left, y: 14, "font-size": 12, "font-weight": 700, fill: COLORS[o.status] || "#1d2330" }, "outcome: " + o.status + (o.error ? " — " + o.error : "")));
  box.append(s);
}

function entries(h) {
  const body = document.querySelector("#entries tbody");
  body.replaceChildren();
  const t0 = new Date(h.instance.startedAt).getTime();
  for (const e of h.entries) {
    let what = [e.name, e.topic ? "→ " + e.topic : "", e.detail].filter(Boolean).join(" ");
    if (e.kind === "event" && e.payload) what += " " + JSON.stringify(e.payload);
    const res = [e.status, e.until && !e.until.startsWith("0001") && e.kind !== "timer" && e.kind !== "retry" ? "in " + ((new Date(e.until) - new Date(e.at)) / 1000).toFixed(3) + "s" : ""].filter(Boolean).join(" ");
    body.append(SB.el("tr", { class: "k-" + e.kind, "data-kind": e.kind },
      SB.el("td", { class: "mono" }, SB.time(e.at)),
      SB.el("td", { class: "mono" }, "+" + ((new Date(e.at).getTime() - t0) / 1000).toFixed(3)),
      SB.el("td", { class: "kind k-" + e.kind }, e.kind),
      SB.el("td", {}, e.step || ""),
      SB.el("td", {}, e.attempt || ""),
      SB.el("td", {}, what),
      SB.el("td", { class: "mono" }, e.key || ""),
      SB.el("td", {}, res, e.error ? SB.el("span", { class: "error" }, " " + e.error) : "")));
  }
}

async function load() {
  const err = document.getElementById("error");
  try {
    const h = await SB.api("GET", "/v1/workflows/" + encodeURIComponent(id) + "/history");
    err.textContent = "";
    const i = h.instance;
    const sum = document.getElementById("summary");
    sum.replaceChildren(...[
      SB.el("div", { class: "toolbar" }, SB.el("span", { id: "status" }, SB.badge(i.status)), SB.el("b", {}, i.saga + (i.version ? " v" + i.version : "")),
        SB.el("span", { class: "note" }, `engine status ${i.runtimeStatus} · started ${SB.time(i.startedAt)}` + (i.finishedAt && !i.finishedAt.startsWith("0001") ? ` · finished ${SB.time(i.finishedAt)}` : ""))),
      i.step ? SB.el("p", {}, `On step ${i.step}` + (i.attempt ? ` (attempt ${i.attempt})` : "") + ((i.waitingFor || []).length ? `, waiting for ${i.waitingFor.join(", ")}` : "") + (i.since ? ` since ${SB.time(i.since)}` : "")) : null,
      i.error ? SB.el("p", { class: "error" }, i.error) : null].filter(Boolean));
    chart(h);
    entries(h);
    document.getElementById("source").textContent = h.note || (h.source === "engine" ? "From the engine's history of this instance." : "");
    document.getElementById("input").textContent = SB.pretty(h.input);
    document.getElementById("outcome").textContent = h.outcome ? SB.pretty(h.outcome) : "(not finished)";
    const finished = i.finishedAt && !i.finishedAt.startsWith("0001");
    for (const b of ["raise", "suspend", "terminate"]) document.getElementById(b).disabled = finished || (b === "suspend" && i.status === "suspended");
    document.getElementById("resume").disabled = i.status !== "suspended";
    return h;
  } catch (e) {
    err.textContent = e.message;
  }
}

async function act(op, body, question, danger) {
  if (!(await SB.confirm(op[0].toUpperCase() + op.slice(1) + " " + id + "?", question, danger))) return;
  const out = document.getElementById("action-result");
  try {
    await SB.api("POST", "/v1/workflows/" + encodeURIComponent(id) + "/" + op, body);
    out.textContent = op + ": done";
    out.className = "note";
  } catch (e) {
    out.textContent = op + ": " + e.message;
    out.className = "error";
  }
  setTimeout(load, 300);
}

document.getElementById("raise").addEventListener("click", () => {
  const name = document.getElementById("event-name").value.trim();
  const raw = document.getElementById("event-payload").value.trim();
  const out = document.getElementById("action-result");
  if (!name) { out.textContent = "an event name is needed"; out.className = "error"; return; }
  let payload;
  if (raw) { try { payload = JSON.parse(raw); } catch (e) { out.textContent = "the payload is not JSON: " + e.message; out.className = "error"; return; } }
  act("raise", { eventName: name, payload }, `Raise event ${name} on this instance.`, false);
});
document.getElementById("suspend").addEventListener("click", () => act("suspend", { reason: "suspended from the console" }, "The instance stops until it is resumed.", false));
document.getElementById("resume").addEventListener("click", () => act("resume", { reason: "resumed from the console" }, "The instance goes on.", false));
document.getElementById("terminate").addEventListener("click", () => act("terminate", { reason: "terminated from the console" }, "The instance stops for good; no compensation runs.", true));
load();
setInterval(() => { const st = document.querySelector("#status .badge"); if (st && ["running", "waiting", "compensating", "pending"].includes(st.textContent)) load(); }, 3000);
