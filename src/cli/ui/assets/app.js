// plakar ui: a small single-page app over the JSON API under /api. Every string from the
// store goes into the DOM as text (never as HTML), so file names cannot inject markup.
"use strict";

const main = document.getElementById("main");

// The token arrives once, in the fragment of the printed URL (never sent to the server);
// it is kept in sessionStorage, which is scoped to this origin and port, and sent as a
// bearer header (or a query parameter on links and images, which cannot carry headers).
const TOKEN_KEY = "plakar-ui-token";
{
  const m = location.hash.match(/^#token=([^&/]*)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#/");
  }
}
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

// Views that finish after a newer one started (fast paging, typing) must not overwrite it.
let renderId = 0;
function show(my, ...nodes) {
  if (my === renderId) main.replaceChildren(...nodes.flat().filter(n => n !== null && n !== undefined));
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

async function api(path, params) {
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  const r = await fetch("/api/" + path + qs(params || {}), { headers, credentials: "omit" });
  let body;
  try { body = await r.json(); } catch (_) { body = { error: r.statusText }; }
  if (!r.ok) {
    const e = new Error(r.status === 401
      ? "This page needs the token from the URL that `plakar ui` printed: open that URL again."
      : body.error || r.statusText);
    e.status = r.status;
    throw e;
  }
  return body;
}

function url(path, params) { return "/api/" + path + qs({ ...(params || {}), token: token() }); }

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function when(ts) { return ts ? ts.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : ""; }

function route() {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query || "") };
}

function go(path, params) { location.hash = "#" + path + qs(params || {}); }

function snapLink(id, path, label, testid) {
  return el("a", { href: "#/snapshot/" + id + qs({ path }), "data-testid": testid }, label);
}

function fail(my, e) {
  show(my, el("h1", {}, "Something went wrong"), el("p", { class: "error", "data-testid": "error" }, e.message));
}

function setNav(name) {
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === name);
}

// ---- snapshot list ----
async function viewSnapshots(params) {
  const my = renderId;
  setNav("snapshots");
  const q = params.get("q") || "", tag = params.get("tag") || "";
  const data = await api("snapshots", { q, tag });
  document.getElementById("store").textContent = data.location;
  const text = el("input", { id: "snap-filter", type: "search", placeholder: "Filter by id, host, path, tag…", value: q });
  const tags = el("select", { id: "snap-tag" }, el("option", { value: "" }, "all tags"),
    data.tags.map(t => el("option", { value: t, selected: t === tag ? "selected" : null }, t)));
  const apply = () => go("/", { q: text.value, tag: tags.value });
  text.addEventListener("keydown", e => { if (e.key === "Enter") apply(); });
  tags.addEventListener("change", apply);
  const rows = data.snapshots.map(s => el("tr", { "data-testid": "snapshot-row", "data-id": s.id },
    el("td", { class: "mono" }, when(s.timestamp)),
    el("td", { class: "mono" }, snapLink(s.id, s.directory, s.short_id, "snapshot-link")),
    el("td", {}, s.hostname),
    el("td", { class: "mono" }, s.importer === "fs" ? s.directory : s.importer + "://" + s.origin + s.directory),
    el("td", {}, s.tags.map(t => el("span", { class: "tag" }, t))),
    el("td", { class: "num" }, bytes(s.summary.size)),
    el("td", { class: "num" }, s.summary.files)));
  show(my, 
    el("h1", {}, "Snapshots ", el("span", { class: "muted", id: "snap-count" }, `${data.snapshots.length} of ${data.total}`)),
    el("div", { class: "toolbar" }, text, tags, el("button", { on: { click: apply } }, "Filter")),
    rows.length ? el("table", { id: "snapshots" },
      el("thead", {}, el("tr", {}, ["Date", "ID", "Host", "Origin", "Tags", "Size", "Files"].map((h, i) => el("th", { class: i >= 5 ? "num" : null }, h)))),
      el("tbody", {}, rows))
      : el("p", { class: "muted" }, data.total ? "No snapshot matches." : "This store has no snapshots yet."));
}

// ---- browsing ----
function crumbs(id, root, path) {
  const parts = path.split("/").filter(Boolean);
  const out = [el("a", { href: "#/snapshot/" + id + qs({ path: "/" }) }, "/")];
  let acc = "";
  parts.forEach((p, i) => {
    acc += "/" + p;
    if (i === parts.length - 1) out.push(el("span", {}, p));
    else out.push(el("a", { href: "#/snapshot/" + id + qs({ path: acc }) }, p), el("span", { class: "muted" }, "/"));
  });
  return el("div", { class: "crumbs mono", "data-testid": "crumbs" }, out);
}

// Glyphs any system font has (headless and minimal desktops have no emoji font).
const KIND = { dir: "▸", file: "·", symlink: "↪", special: "◆" };

async function viewBrowse(id, params) {
  const my = renderId;
  setNav("snapshots");
  const path = params.get("path") || "";
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const filter = params.get("filter") || "";
  const limit = 500;
  const t = await api("snapshots/" + id + "/tree", { path, offset, limit, filter });
  const e = t.entry;
  if (e.kind !== "dir") return viewFile(my, id, t);
  const snap = await api("snapshots/" + id);
  const f = el("input", { id: "dir-filter", type: "search", placeholder: "Filter names…", value: filter });
  f.addEventListener("keydown", ev => { if (ev.key === "Enter") go("/snapshot/" + id, { path: e.path, filter: f.value }); });
  const page = (o) => go("/snapshot/" + id, { path: e.path, offset: o, filter });
  const rows = t.children.map(c => el("tr", { "data-testid": "entry", "data-name": c.name },
    el("td", { class: "kind" }, KIND[c.kind] || ""),
    el("td", { class: "mono" }, c.kind === "dir" || c.kind === "file"
      ? el("a", { href: "#/snapshot/" + id + qs({ path: c.path }), class: "entry-link" }, c.name)
      : c.name, c.target ? el("span", { class: "muted" }, " → " + c.target) : null,
      c.error ? el("span", { class: "error" }, " " + c.error) : null),
    el("td", { class: "num" }, c.kind === "file" ? bytes(c.size) : ""),
    el("td", { class: "mono muted" }, c.mode),
    el("td", { class: "mono muted" }, when(c.mtime))));
  const last = Math.min(offset + t.children.length, t.total);
  show(my, 
    el("h1", {}, "Snapshot ", el("span", { class: "mono" }, snap.short_id), " ", el("span", { class: "muted" }, when(snap.timestamp) + " · " + snap.hostname)),
    crumbs(id, t.root, e.path),
    el("div", { class: "toolbar" }, f,
      el("a", { class: "button", id: "download-zip", href: url("snapshots/" + id + "/archive", { path: e.path, format: "zip" }) }, "Download .zip"),
      el("a", { class: "button", id: "download-tgz", href: url("snapshots/" + id + "/archive", { path: e.path, format: "tar.gz" }) }, "Download .tar.gz"),
      el("a", { class: "button", href: "#/search" + qs({ snapshot: id }) }, "Search this snapshot")),
    el("table", { id: "entries" },
      el("thead", {}, el("tr", {}, ["", "Name", "Size", "Mode", "Modified"].map((h, i) => el("th", { class: i === 2 ? "num" : null }, h)))),
      el("tbody", {}, rows)),
    el("div", { class: "toolbar" },
      el("button", { id: "prev-page", disabled: offset <= 0 ? "disabled" : null, on: { click: () => page(Math.max(0, offset - limit)) } }, "‹ Previous"),
      el("span", { id: "page-info", class: "muted" }, t.total ? `${offset + 1}–${last} of ${t.total}` : "empty directory"),
      el("button", { id: "next-page", disabled: last >= t.total ? "disabled" : null, on: { click: () => page(offset + limit) } }, "Next ›")));
}

async function viewFile(my, id, t) {
  const e = t.entry;
  const p = await api("snapshots/" + id + "/preview", { path: e.path });
  let preview;
  if (p.preview === "text") {
    preview = [el("pre", { class: "preview", id: "preview-text" }, p.text),
      p.truncated ? el("p", { class: "muted" }, "Showing the first " + bytes(new TextEncoder().encode(p.text).length) + ".") : null];
  } else if (p.preview === "image") {
    preview = el("img", { class: "preview", id: "preview-image", alt: e.name, src: url("snapshots/" + id + "/content", { path: e.path }) });
  } else if (e.kind === "file") {
    preview = el("p", { class: "muted", id: "preview-none" }, "Binary file: no preview.");
  } else {
    preview = el("p", { class: "muted" }, e.kind + (e.target ? " → " + e.target : ""));
  }
  show(my, 
    el("h1", { class: "mono" }, e.name),
    crumbs(id, t.root, e.path),
    el("dl", { class: "meta" },
      el("dt", {}, "Size"), el("dd", {}, bytes(e.size) + " (" + e.size + " bytes)"),
      el("dt", {}, "Mode"), el("dd", { class: "mono" }, e.mode),
      el("dt", {}, "Owner"), el("dd", {}, e.user + ":" + e.group),
      el("dt", {}, "Modified"), el("dd", {}, when(e.mtime)),
      e.error ? [el("dt", {}, "Error"), el("dd", { class: "error" }, e.error)] : null),
    el("div", { class: "toolbar" },
      e.kind === "file" ? el("a", { class: "button", id: "download", href: url("snapshots/" + id + "/content", { path: e.path, download: 1 }), download: e.name }, "Download") : null,
      el("a", { class: "button", href: "#/diff" + qs({ b: id, path: e.path }) }, "Compare with another snapshot")),
    preview);
}

// ---- search ----
async function snapshotOptions(select, chosen, blank) {
  const data = await api("snapshots");
  if (blank) select.append(el("option", { value: "" }, blank));
  for (const s of data.snapshots)
    select.append(el("option", { value: s.id, selected: s.id === chosen || s.short_id === chosen ? "selected" : null }, s.short_id + "  " + when(s.timestamp) + "  " + s.directory));
  return data.snapshots;
}

async function viewSearch(params) {
  const my = renderId;
  setNav("search");
  const q = params.get("q") || "", snap = params.get("snapshot") || "";
  const input = el("input", { id: "search-q", type: "search", placeholder: "Name or glob, e.g. *.conf", value: q });
  const which = el("select", { id: "search-snapshot" });
  await snapshotOptions(which, snap, "all snapshots");
  const run = () => go("/search", { q: input.value, snapshot: which.value });
  input.addEventListener("keydown", e => { if (e.key === "Enter") run(); });
  const results = el("div", { id: "search-results" });
  show(my, el("h1", {}, "Search"),
    el("div", { class: "toolbar" }, input, which, el("button", { id: "search-go", on: { click: run } }, "Search")), results);
  if (!q) return;
  const r = await api("search", { q, snapshot: snap });
  results.replaceChildren(
    el("p", { class: "muted", id: "search-count" }, r.results.length + (r.truncated ? "+ " : " ") + "match" + (r.results.length === 1 ? "" : "es")),
    el("table", {}, el("tbody", {}, r.results.map(h => el("tr", { "data-testid": "search-hit" },
      el("td", { class: "mono" }, snapLink(h.snapshot, "/", h.short_id)),
      el("td", { class: "kind" }, KIND[h.kind] || ""),
      el("td", { class: "mono" }, snapLink(h.snapshot, h.path, h.path, "search-link")),
      el("td", { class: "num" }, h.kind === "file" ? bytes(h.size) : ""))))));
}

// ---- diff ----
async function viewDiff(params) {
  const my = renderId;
  setNav("diff");
  const a = params.get("a") || "", b = params.get("b") || "", path = params.get("path") || "";
  const sa = el("select", { id: "diff-a" }), sb = el("select", { id: "diff-b" });
  const snaps = await snapshotOptions(sa, a, null);
  await snapshotOptions(sb, b, null);
  if (!a && snaps.length > 1) sa.value = snaps[1].id;
  const p = el("input", { id: "diff-path", placeholder: "path (default: whole snapshot)", value: path });
  const run = () => go("/diff", { a: sa.value, b: sb.value, path: p.value });
  const out = el("div", { id: "diff-results" });
  show(my, el("h1", {}, "Compare snapshots"),
    el("div", { class: "toolbar" }, "from", sa, "to", sb, p, el("button", { id: "diff-go", on: { click: run } }, "Compare")), out);
  if (!a || !b) return;
  const d = await api("diff", { a, b, path });
  if (d.changes) {
    const sign = { added: "+", removed: "−", modified: "~" };
    out.replaceChildren(
      el("p", { class: "muted", id: "diff-count" }, d.changes.length ? d.changes.length + " changes" + (d.truncated ? " (first ones)" : "") : "No differences."),
      el("ul", { class: "mono", style: null }, d.changes.map(c => el("li", { class: c.op, "data-testid": "change", "data-op": c.op },
        sign[c.op] + " ", snapLink(c.op === "removed" ? d.a : d.b, c.path, c.path)))));
  } else if (d.unified !== undefined) {
    out.replaceChildren(el("pre", { class: "preview", id: "diff-unified" }, d.unified));
  } else {
    out.replaceChildren(el("p", { class: "muted", id: "diff-count" }, d.same ? "No differences." : "The files differ (binary or too large to compare line by line)."));
  }
}

// ---- store info ----
function chart(timeline) {
  const W = 800, H = 220, pad = 30;
  const s = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-testid": "chart" });
  if (!timeline.length) return s;
  const max = Math.max(...timeline.map(t => t.size), 1);
  const t0 = Date.parse(timeline[0].timestamp), t1 = Date.parse(timeline[timeline.length - 1].timestamp);
  const span = Math.max(t1 - t0, 1);
  const bw = Math.max(2, Math.min(24, (W - 2 * pad) / timeline.length - 2));
  timeline.forEach(t => {
    const x = pad + (timeline.length === 1 ? (W - 2 * pad) / 2 : (Date.parse(t.timestamp) - t0) / span * (W - 2 * pad - bw));
    const h = Math.max(1, t.size / max * (H - 2 * pad));
    const r = svg("rect", { x, y: H - pad - h, width: bw, height: h });
    r.append(svg("title", {}, when(t.timestamp) + ": " + bytes(t.size) + ", " + t.files + " files"));
    s.append(r);
  });
  s.append(svg("text", { x: pad, y: H - 8 }, when(timeline[0].timestamp)));
  s.append(svg("text", { x: W - pad, y: H - 8, "text-anchor": "end" }, when(timeline[timeline.length - 1].timestamp)));
  s.append(svg("text", { x: pad, y: 16 }, bytes(max)));
  return s;
}

async function viewInfo() {
  const my = renderId;
  setNav("info");
  const i = await api("info");
  const card = (k, v, id) => el("div", { class: "card", "data-testid": id }, el("div", { class: "v" }, v), el("div", { class: "k" }, k));
  show(my, el("h1", {}, "Store"),
    el("p", { class: "mono muted" }, i.location),
    el("div", { class: "grid", id: "info-cards" },
      card("snapshots", i.snapshots, "info-snapshots"),
      card("stored", bytes(i.storage_size), "info-stored"),
      card("backed up (all snapshots)", bytes(i.logical_size), "info-logical"),
      card("dedup + compression ratio", i.dedup_ratio ? i.dedup_ratio.toFixed(2) + "×" : "–", "info-ratio"),
      card("packfiles", i.packfiles, "info-packfiles"),
      card("blobs", i.blobs, "info-blobs")),
    el("h2", {}, "Snapshot sizes over time"),
    chart(i.timeline),
    el("h2", {}, "Configuration"),
    el("dl", { class: "meta" },
      el("dt", {}, "Encryption"), el("dd", {}, i.encryption || "none (plaintext store)"),
      el("dt", {}, "Compression"), el("dd", {}, i.compression || "none"),
      el("dt", {}, "Chunking"), el("dd", {}, i.chunking),
      el("dt", {}, "Hashing"), el("dd", {}, i.hashing),
      el("dt", {}, "Created"), el("dd", {}, i.created),
      el("dt", {}, "Repository ID"), el("dd", { class: "mono" }, i.repository_id)));
}

async function render() {
  const { parts, params } = route();
  const my = ++renderId;
  main.setAttribute("aria-busy", "true");
  try {
    if (parts[0] === "snapshot" && parts[1]) await viewBrowse(parts[1], params);
    else if (parts[0] === "search") await viewSearch(params);
    else if (parts[0] === "diff") await viewDiff(params);
    else if (parts[0] === "info") await viewInfo();
    else await viewSnapshots(params);
  } catch (e) {
    fail(my, e);
  } finally {
    main.setAttribute("aria-busy", "false");
  }
}

window.addEventListener("hashchange", render);
render();
