"use strict";
// The sagas page: filters in the URL's query, so a filtered view can be
// bookmarked and shared.
SB.header("sagas");
const STATUSES = ["running", "waiting", "compensating", "pending", "suspended", "completed", "compensated", "failed", "terminated"];
const form = document.getElementById("filters");
const sel = document.getElementById("f-status");
for (const s of STATUSES) sel.append(SB.el("option", { value: s }, s));
const fields = ["saga", "version", "status", "step", "q", "startedFrom", "startedTo", "finishedFrom", "finishedTo"];
const params = new URLSearchParams(location.search);
for (const f of fields) if (params.get(f)) document.getElementById("f-" + f).value = params.get(f);
let nextToken = "";

function query(extra) {
  const q = new URLSearchParams();
  for (const f of fields) { const v = document.getElementById("f-" + f).value.trim(); if (v) q.set(f, v); }
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q;
}

function row(i) {
  const waiting = (i.waitingFor || []).join(", ");
  const step = i.step ? `${i.step}${i.attempt > 1 ? " (attempt " + i.attempt + ")" : ""}${waiting ? " · " + waiting : ""}` : "";
  const tr = SB.el("tr", { class: "clickable", "data-id": i.instanceId, onclick: () => { location.href = "/ui/saga.html?id=" + encodeURIComponent(i.instanceId); } },
    SB.el("td", { class: "mono" }, SB.el("a", { href: "/ui/saga.html?id=" + encodeURIComponent(i.instanceId) }, i.instanceId)),
    SB.el("td", {}, i.saga + (i.version ? " v" + i.version : "")),
    SB.el("td", { class: "status" }, SB.badge(i.status)),
    SB.el("td", {}, step),
    SB.el("td", { title: SB.time(i.startedAt) }, SB.ago(i.startedAt)),
    SB.el("td", { title: SB.time(i.finishedAt) }, SB.ago(i.finishedAt)),
    SB.el("td", { class: "error" }, i.error || ""));
  return tr;
}

async function load(append) {
  const err = document.getElementById("error");
  try {
    const q = query(append ? { pageToken: nextToken } : { counts: "true" });
    q.set("pageSize", "50");
    const data = await SB.api("GET", "/v1/workflows?" + q.toString());
    err.textContent = "";
    const body = document.querySelector("#instances tbody");
    if (!append) body.replaceChildren();
    for (const i of data.instances) body.append(row(i));
    if (!append && data.instances.length === 0) body.append(SB.el("tr", {}, SB.el("td", { colspan: 7, class: "empty" }, "No saga instance matches.")));
    nextToken = data.nextPageToken || "";
    document.getElementById("more").hidden = !nextToken;
    if (data.counts) {
      const box = document.getElementById("counts");
      box.replaceChildren();
      const current = document.getElementById("f-status").value;
      for (const s of STATUSES) {
        const n = data.counts.counts[s] || 0;
        box.append(SB.el("div", { class: "count" + (current === s ? " selected" : ""), "data-status": s, onclick: () => { sel.value = current === s ? "" : s; apply(); } },
          SB.el("b", {}, n + (data.counts.complete ? "" : "+")), SB.badge(s)));
      }
    }
    let src = data.source === "engine" ? `Listed by the ${data.engineKind || ""} engine.` : "";
    if (data.note) src = data.note;
    if (data.counts && !data.counts.complete) src += ` Counts cover the ${data.counts.scanned} most recent instances.`;
    document.getElementById("source").textContent = src;
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    err.textContent = e.message;
  }
}

function apply() {
  const q = query();
  history.replaceState(null, "", "?" + q.toString());
  load(false);
}
form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
document.getElementById("clear").addEventListener("click", () => { for (const f of fields) document.getElementById("f-" + f).value = ""; apply(); });
document.getElementById("more").addEventListener("click", () => load(true));
setInterval(() => { if (document.getElementById("auto").checked && !nextTokenUsed()) load(false); }, 5000);
function nextTokenUsed() { return document.querySelectorAll("#instances tbody tr").length > 50; }
load(false);
