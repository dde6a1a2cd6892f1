// Shared helpers of the console pages. Every call goes to this server's
// admin API; writes carry the console header that the session cookie
// requires (see the admin package).
"use strict";

const SB = {
  async api(method, path, body) {
    const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") opts.headers["X-Sagabridge-Console"] = "1";
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401) { location.href = "/ui/login"; throw new Error("not logged in"); }
    if (resp.status === 204) return null;
    const data = await resp.json().catch(() => ({ error: resp.statusText }));
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  },
  el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  },
  badge(status) { return SB.el("span", { class: "badge s-" + (status || "unknown") }, status || "?"); },
  time(t) {
    if (!t || t.startsWith("0001")) return "";
    const d = new Date(t);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  },
  ago(t) {
    if (!t || t.startsWith("0001")) return "";
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (s < 60) return Math.round(s) + "s ago";
    if (s < 3600) return Math.round(s / 60) + "m ago";
    if (s < 86400) return Math.round(s / 3600) + "h ago";
    return Math.round(s / 86400) + "d ago";
  },
  pretty(v) {
    if (v === undefined || v === null || v === "") return "";
    if (typeof v === "string") { try { return JSON.stringify(JSON.parse(v), null, 2); } catch (e) { return v; } }
    return JSON.stringify(v, null, 2);
  },
  // confirm shows the page's dialog and resolves to true on "Confirm".
  confirm(title, text, danger) {
    return new Promise((resolve) => {
      const dlg = document.getElementById("confirm");
      dlg.querySelector("h2").textContent = title;
      dlg.querySelector("p").textContent = text;
      const ok = dlg.querySelector("#confirm-ok");
      ok.className = danger ? "danger" : "";
      dlg.returnValue = "";
      dlg.onclose = () => resolve(dlg.returnValue === "ok");
      dlg.showModal();
    });
  },
  // prompt shows the page's input dialog and resolves to the values or null.
  header(active) {
    const nav = [["Sagas", "/ui/", "sagas"], ["Dead letters", "/ui/dlq.html", "dlq"], ["Migration", "/ui/migration.html", "migration"]];
    const h = document.querySelector("header");
    h.append(SB.el("span", { class: "brand" }, "sagabridge"),
      SB.el("nav", {}, nav.map(([t, href, id]) => SB.el("a", { href, class: id === active ? "active" : "" }, t))),
      SB.el("span", { class: "right", id: "info" }));
    SB.api("GET", "/v1/info").then((i) => {
      document.getElementById("info").textContent = `worker ${i.version || ""} · engine ${i.engineKind || "?"} · broker ${i.brokerKind || "?"}`;
    }).catch(() => {});
  },
};
