"use strict";
// Dead letters: browse with filters, look at one, replay or purge the
// selected ones after a confirmation, and see them leave the list.
SB.header("dlq");
const fields = ["kind", "route", "topic", "reason", "since"];
let kindsFilled = false;

function selected() { return [...document.querySelectorAll("#letters tbody input:checked")].map((c) => c.value); }
function updateButtons() {
  const n = selected().length;
  document.getElementById("replay").disabled = n === 0;
  document.getElementById("purge").disabled = n === 0;
  document.getElementById("replay").textContent = `Replay selected (${n})`;
  document.getElementById("purge").textContent = `Purge selected (${n})`;
}

async function show(ref) {
  try {
    const d = await SB.api("GET", "/v1/dlq/" + ref.split("/").map(encodeURIComponent).join("/"));
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-ref").textContent = ref + " · " + d.reason;
    document.getElementById("detail-headers").textContent = SB.pretty(d.headers || {});
    // JSON as JSON, other text as it is, anything else in base64.
    const payload = d.payload !== undefined ? SB.pretty(d.payload)
      : d.payloadText !== undefined ? d.payloadText
      : d.payloadBase64 !== undefined ? "base64: " + d.payloadBase64 : "";
    document.getElementById("detail-payload").textContent = payload;
  } catch (e) { document.getElementById("error").textContent = e.message; }
}

async function load() {
  const q = new URLSearchParams();
  for (const f of fields) { const v = document.getElementById("f-" + f).value.trim(); if (v) q.set(f, v); }
  try {
    const data = await SB.api("GET", "/v1/dlq?" + q.toString());
    document.getElementById("error").textContent = "";
    if (!kindsFilled) { for (const k of data.kinds) document.getElementById("f-kind").append(SB.el("option", { value: k }, k)); kindsFilled = true; }
    document.getElementById("summary").textContent = `${data.items.length}${data.more ? "+" : ""} shown of ${data.total} on topic ${data.topic}`;
    const body = document.querySelector("#letters tbody");
    body.replaceChildren();
    for (const it of data.items) {
      body.append(SB.el("tr", { class: "clickable", "data-ref": it.ref, onclick: (e) => { if (e.target.tagName !== "INPUT") show(it.ref); } },
        SB.el("td", {}, SB.el("input", { type: "checkbox", value: it.ref, onchange: updateButtons })),
        SB.el("td", { class: "mono" }, it.ref),
        SB.el("td", { class: "mono" }, SB.time(it.failedAt || it.storedAt)),
        SB.el("td", {}, SB.el("span", { class: "badge s-failed" }, it.kind || "?")),
        SB.el("td", {}, it.route || ""),
        SB.el("td", {}, it.originTopic),
        SB.el("td", {}, it.eventType || ""),
        SB.el("td", {}, it.attempts),
        SB.el("td", {}, it.reason)));
    }
    if (data.items.length === 0) body.append(SB.el("tr", {}, SB.el("td", { colspan: 9, class: "empty" }, "No dead letter matches.")));
    updateButtons();
  } catch (e) { document.getElementById("error").textContent = e.message; }
}

async function act(op) {
  const refs = selected();
  const what = op === "replay" ? "re-published to its origin topic and removed from the dead-letter topic once the broker stored it" : "deleted for good";
  if (!(await SB.confirm(`${op[0].toUpperCase() + op.slice(1)} ${refs.length} dead letter(s)?`, `Each selected message is ${what}: ${refs.join(", ")}`, op === "purge"))) return;
  const out = document.getElementById("result");
  try {
    const res = await SB.api("POST", "/v1/dlq/" + op, { refs });
    out.textContent = op === "replay" ? `replayed ${res.replayed || 0}` + (res.kept ? `; kept: ${res.kept.join("; ")}` : "") : `purged ${res.purged || 0}`;
    out.className = "note";
  } catch (e) { out.textContent = op + ": " + e.message; out.className = "error"; }
  document.getElementById("all").checked = false;
  load();
}

document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
document.getElementById("all").addEventListener("change", (e) => { for (const c of document.querySelectorAll("#letters tbody input")) c.checked = e.target.checked; updateButtons(); });
document.getElementById("replay").addEventListener("click", () => act("replay"));
document.getElementById("purge").addEventListener("click", () => act("purge"));
load();
