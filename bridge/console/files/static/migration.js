"use strict";
SB.header("migration");
function kv(m) { return Object.entries(m || {}).map(([k, v]) => `${k} ${v}`).join(", "); }
async function load() {
  const q = new URLSearchParams({ since: document.getElementById("f-since").value.trim() || "24h", examples: "3" });
  const until = document.getElementById("f-until").value.trim();
  if (until) q.set("until", until);
  try {
    const r = await SB.api("GET", "/v1/migration/report?" + q.toString());
    document.getElementById("error").textContent = "";
    const body = document.querySelector("#report tbody");
    body.replaceChildren();
    const ex = document.getElementById("examples");
    ex.replaceChildren();
    for (const s of r.sagas || []) {
      body.append(SB.el("tr", { "data-saga": s.saga },
        SB.el("td", {}, s.saga), SB.el("td", {}, s.stage), SB.el("td", {}, s.percent + "%"),
        SB.el("td", {}, s.instances), SB.el("td", {}, `${s.active} (${kv(s.activeStatus)})`),
        SB.el("td", {}, s.shadow), SB.el("td", { class: "agreeing" }, s.agreeing), SB.el("td", { class: "diverging" }, s.diverging),
        SB.el("td", {}, kv(s.byKind))));
      const kinds = Object.entries(s.examples || {});
      if (kinds.length) {
        ex.append(SB.el("div", { class: "card" }, SB.el("h2", {}, "Examples of " + s.saga),
          SB.el("ul", {}, kinds.map(([k, ids]) => SB.el("li", {}, k + ": ", ids.map((id, n) => [n ? ", " : "", SB.el("a", { href: "/ui/saga.html?id=" + encodeURIComponent(id), class: "mono" }, id)]))))));
      }
    }
    if (!(r.sagas || []).length) body.append(SB.el("tr", {}, SB.el("td", { colspan: 9, class: "empty" }, "No instance of a migrating saga finished in this window.")));
  } catch (e) { document.getElementById("error").textContent = e.message; }
}
document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
load();
