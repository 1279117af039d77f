// The dashboard page: plain JavaScript and SVG, served by the package, nothing from a CDN.
// It only reads the JSON API; a token, if the dashboard needs one, comes in the page's
// fragment (#token=...), which browsers never send to a server or put in its logs.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const LABELS = { pedestrian: "pedestrians", bike: "bikes", vehicle: "vehicles" };
const COLOURS = {
  in: { pedestrian: "#1f6feb", bike: "#54aeff", vehicle: "#0a3069" },
  out: { pedestrian: "#d1495b", bike: "#f4a259", vehicle: "#6e1423" },
};
const SVG = "http://www.w3.org/2000/svg";
let sites = [];
let timezone = "UTC";
let generation = 0; // a newer refresh makes an older one's answers obsolete

async function api(path, params) {
  const url = new URL(path, location.origin);
  for (const [key, value] of params || []) url.searchParams.append(key, value);
  const response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response.json();
}

function isoDate(date) { return date.toISOString().slice(0, 10); }
function addDays(text, days) { const d = new Date(`${text}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + days); return isoDate(d); }
function checked(name) { return [...document.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value); }
function option(select, value, text) { const o = document.createElement("option"); o.value = value; o.textContent = text; select.append(o); }
function element(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function selection() {
  const params = new URLSearchParams();
  for (const key of ["site", "camera", "line"]) if ($(key).value) params.set(key, $(key).value);
  params.set("from", $("from").value);
  params.set("to", addDays($("to").value, 1));
  params.set("bucket", $("bucket").value);
  for (const d of checked("direction")) params.append("direction", d);
  for (const c of checked("category")) params.append("category", c);
  return params;
}

function fillCameras() {
  const site = sites.find((s) => s.site === $("site").value);
  const keep = $("camera").value;
  $("camera").replaceChildren();
  option($("camera"), "", "all cameras");
  for (const c of site ? site.cameras : []) option($("camera"), c.camera, c.camera + (c.online === false ? " (offline)" : ""));
  if ([...$("camera").options].some((o) => o.value === keep)) $("camera").value = keep;
  fillLines();
}

function fillLines() {
  const site = sites.find((s) => s.site === $("site").value);
  const cameras = site ? site.cameras.filter((c) => !$("camera").value || c.camera === $("camera").value) : [];
  const keep = $("line").value;
  $("line").replaceChildren();
  option($("line"), "", "all lines");
  for (const name of [...new Set(cameras.flatMap((c) => c.lines))].sort()) option($("line"), name, name);
  if ([...$("line").options].some((o) => o.value === keep)) $("line").value = keep;
}

// Rows of several lines fall in the same buckets: the chart shows their sum.
function byBucket(rows, directions, categories) {
  const buckets = new Map();
  for (const row of rows) {
    let b = buckets.get(row.start);
    if (!b) buckets.set(row.start, (b = { start: row.start, end: row.end, in: {}, out: {} }));
    for (const d of directions) for (const c of categories) b[d][c] = (b[d][c] || 0) + ((row[d] || {})[c] || 0);
  }
  return [...buckets.values()].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}

function label(iso, bucket) {
  const [date, time] = iso.split("T");
  return bucket === "day" ? date.slice(5) : `${date.slice(5)} ${time.slice(0, 5)}`;
}

// Bars sit on a time axis from the range's start to its end, so a gap in the data shows.
function drawChart(buckets, directions, categories, counts) {
  if (!buckets.length || !directions.length || !categories.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No window was received for this selection and range.";
    $("chart").replaceChildren(empty);
    $("legend").replaceChildren();
    return;
  }
  const width = 1100, height = 340, left = 52, right = 10, top = 14, bottom = 36;
  const t0 = Date.parse(counts.from), t1 = Date.parse(counts.to);
  const xOf = (iso) => left + ((Date.parse(iso) - t0) / (t1 - t0)) * (width - left - right);
  const sum = (b, d) => categories.reduce((n, c) => n + (b[d][c] || 0), 0);
  const up = directions.includes("in") ? Math.max(1, ...buckets.map((b) => sum(b, "in"))) : 0;
  const down = directions.includes("out") ? Math.max(1, ...buckets.map((b) => sum(b, "out"))) : 0;
  const plot = height - top - bottom;
  const zero = top + (plot * up) / (up + down);
  const scale = plot / (up + down);
  const svg = element("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Counts per bucket" });
  for (const [value, sign] of [[up, -1], [up / 2, -1], [down / 2, 1], [down, 1]]) {
    if (!value) continue;
    const y = zero + sign * value * scale;
    svg.append(element("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }));
    svg.append(element("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, `${Math.round(value)}`));
  }
  const totals = { in: 0, out: 0 };
  for (const b of buckets) {
    const x = xOf(b.start), step = xOf(b.end) - x;
    for (const d of directions) {
      let offset = 0;
      for (const c of categories) {
        const n = b[d][c] || 0;
        totals[d] += n;
        const h = n * scale;
        const y = d === "in" ? zero - offset - h : zero + offset;
        offset += h;
        const bar = element("rect", {
          x: x + step * 0.08, y, width: Math.max(step * 0.84, 0.5), height: h, fill: COLOURS[d][c],
          "data-start": b.start, "data-direction": d, "data-category": c, "data-count": n,
        });
        bar.append(element("title", {}, `${label(b.start, counts.bucket)}: ${n} ${LABELS[c]} ${d}`));
        svg.append(bar);
      }
    }
  }
  svg.append(element("line", { class: "axis", x1: left, x2: width - right, y1: zero, y2: zero }));
  // Ticks at even times across the range, written in the dashboard's time zone.
  const daily = counts.bucket === "day" || t1 - t0 > 3 * 86400e3;
  const format = new Intl.DateTimeFormat("en-GB", daily
    ? { timeZone: counts.tz, day: "2-digit", month: "short" }
    : { timeZone: counts.tz, day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
  for (let i = 0; i <= 8; i++) {
    const moment = t0 + ((t1 - t0) * i) / 8;
    const x = xOf(new Date(moment).toISOString());
    svg.append(element("line", { class: "axis", x1: x, x2: x, y1: height - bottom, y2: height - bottom + 4 }));
    svg.append(element("text", { x, y: height - 14, "text-anchor": i === 0 ? "start" : i === 8 ? "end" : "middle" }, format.format(moment)));
  }
  const edge = { x: width - right, "text-anchor": "end" };
  if (directions.includes("in")) svg.append(element("text", { ...edge, y: top - 3 }, "in ↑"));
  if (directions.includes("out")) svg.append(element("text", { ...edge, y: height - bottom + 12 }, "out ↓"));
  svg.setAttribute("data-total-in", totals.in);
  svg.setAttribute("data-total-out", totals.out);
  svg.setAttribute("data-buckets", buckets.length);
  $("chart").replaceChildren(svg);
  $("legend").replaceChildren(...directions.flatMap((d) => categories.map((c) => {
    const s = document.createElement("span"); s.style.setProperty("--c", COLOURS[d][c]); s.textContent = `${LABELS[c]} ${d}`; return s;
  })));
}

function drawTable(buckets, directions, categories) {
  const head = ["bucket", ...directions.flatMap((d) => categories.map((c) => `${LABELS[c]} ${d}`))];
  const rows = buckets.map((b) => [b.start, ...directions.flatMap((d) => categories.map((c) => b[d][c] || 0))]);
  fillTable($("table"), head, rows);
}

function fillTable(table, head, rows) {
  const tr = (cells, tag) => { const r = document.createElement("tr"); for (const v of cells) { const c = document.createElement(tag); c.textContent = v; r.append(c); } return r; };
  table.replaceChildren(tr(head, "th"), ...rows.map((r) => tr(r, "td")));
}

function drawSummary(summary, directions, categories) {
  const sum = (counts, d) => categories.reduce((n, c) => n + ((counts[d] || {})[c] || 0), 0);
  const cards = [];
  const wow = summary.week_on_week;
  for (const d of directions) {
    const now = sum(wow.this_week.counts, d), before = sum(wow.last_week.counts, d);
    const change = before ? (100 * (now - before)) / before : null;
    const card = document.createElement("div");
    card.className = "card";
    card.dataset.direction = d;
    card.innerHTML = '<div class="label"></div><div class="value"></div><div class="change"></div>';
    card.querySelector(".label").textContent = `${d}: total over the range`;
    card.querySelector(".value").textContent = sum(summary.totals, d).toLocaleString();
    const text = change === null ? "no data the week before" : `${change >= 0 ? "+" : ""}${change.toFixed(1)} %`;
    const changeNode = card.querySelector(".change");
    changeNode.textContent = `last 7 days ${now.toLocaleString()} vs ${before.toLocaleString()}: ${text}`;
    if (change !== null) changeNode.classList.add(change >= 0 ? "up" : "down");
    cards.push(card);
  }
  $("summary").replaceChildren(...cards);
}

// One origin-destination matrix per camera: origins down, destinations across, each cell the
// movement's total over the picked categories; a pair without a movement stays blank.
function drawMovements(document_, categories) {
  const byCamera = new Map();
  for (const m of document_.movements) {
    const key = `${m.site} / ${m.camera}`;
    if (!byCamera.has(key)) byCamera.set(key, []);
    byCamera.get(key).push(m);
  }
  const tables = [];
  for (const [camera, cells] of byCamera) {
    const origins = [...new Set(cells.map((m) => m.origin))].sort();
    const destinations = [...new Set(cells.map((m) => m.destination))].sort();
    const total = (m) => categories.reduce((n, c) => n + (m.counts[c] || 0), 0);
    const value = (o, d) => { const m = cells.find((x) => x.origin === o && x.destination === d); return m ? total(m) : ""; };
    const table = document.createElement("table");
    table.className = "od";
    table.dataset.camera = camera;
    fillTable(table, [`${camera}: from \\ to`, ...destinations], origins.map((o) => [o, ...destinations.map((d) => value(o, d))]));
    tables.push(table);
  }
  if (!tables.length) {
    const none = document.createElement("p");
    none.textContent = "No turning movement is counted here (cameras[].movements in the box's configuration).";
    tables.push(none);
  }
  $("movements").replaceChildren(...tables);
}

function drawCompleteness(rows) {
  const hours = (s) => (s / 3600).toFixed(1);
  fillTable($("completeness"),
    ["camera", "windows received / expected", "complete", "partial windows", "hours watched", "offline (h)", "now"],
    rows.map((r) => [`${r.site} / ${r.camera}`, `${r.received} / ${r.expected}`,
      r.ratio === null ? "–" : `${(100 * r.ratio).toFixed(1)} %`, r.partial, hours(r.observed_s), hours(r.offline_s),
      r.online === null ? "unknown" : r.online ? "online" : "offline"]));
}

async function drawNotice() {
  const site = $("site").value;
  $("notice").textContent = "";
  $("notice-link").textContent = "";
  if (!site) return;
  try {
    const notice = await api(`/api/sites/${encodeURIComponent(site)}/notice`);
    $("notice").textContent = notice.notice;
    const a = document.createElement("a");
    a.href = notice.notice_url; a.textContent = notice.notice_url; a.rel = "noopener";
    $("notice-link").replaceChildren(`Policy ${notice.policy} (sha256 ${notice.policy_sha256.slice(0, 12)}…), published at `, a);
  } catch (_) {
    $("notice-link").textContent = "No notice received from this site yet.";
  }
}

async function drawAuditHeads() {
  const site = $("site").value;
  try {
    const params = new URLSearchParams({ limit: "10" });
    if (site) params.set("site", site);
    const heads = await api("/api/audit-heads", params);
    fillTable($("audit-heads"), ["site", "published (UTC)", "entries", "head (sha256)"],
      heads.map((h) => [h.site, h.time, h.entries, h.head]));
  } catch (_) {
    $("audit-heads").replaceChildren();
  }
}

async function refresh() {
  const mine = ++generation;
  const params = selection();
  const directions = checked("direction"), categories = checked("category");
  history.replaceState(null, "", `?${params}${location.hash}`);
  for (const [id, kind] of [["csv", "csv"], ["json", "json"]]) {
    const download = new URLSearchParams(params);
    if (token) download.set("token", token);
    $(id).href = `/api/counts.${kind}?${download}`;
  }
  $("chart").setAttribute("aria-busy", "true");
  try {
    const [counts, summary, completeness, movements] = await Promise.all([
      api("/api/counts", params), api("/api/summary", params), api("/api/completeness", params),
      api("/api/movements", params),
    ]);
    if (mine !== generation) return;
    const buckets = byBucket(counts.rows, directions, categories);
    const what = [$("site").value || "all sites", $("camera").value, $("line").value].filter(Boolean).join(" / ");
    $("chart-title").textContent = `Counts per ${$("bucket").selectedOptions[0].textContent}: ${what}`;
    drawChart(buckets, directions, categories, counts);
    drawTable(buckets, directions, categories);
    drawSummary(summary, directions, categories);
    drawCompleteness(completeness);
    drawMovements(movements, categories);
    $("error").hidden = true;
  } catch (err) {
    $("error").textContent = `Could not load the counts (${err.message}).`;
    $("error").hidden = false;
  } finally {
    if (mine === generation) $("chart").setAttribute("aria-busy", "false");
  }
}

async function start() {
  const query = new URLSearchParams(location.search);
  try {
    const [config, list] = await Promise.all([api("/api/config"), api("/api/sites")]);
    sites = list;
    timezone = config.timezone;
    document.title = $("title").textContent = config.title;
    const licence = document.createElement("a");
    licence.href = config.licence_url || "#"; licence.textContent = config.licence;
    $("licence").replaceChildren("Open data under ", licence, config.attribution ? `, attribution: ${config.attribution}` : "",
      `. Days and hours in ${config.timezone}.`);
  } catch (err) {
    $("error").textContent = `Could not load the dashboard (${err.message}).`;
    $("error").hidden = false;
    return;
  }
  for (const s of sites) option($("site"), s.site, s.site);
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: timezone }).format(new Date()); // YYYY-MM-DD
  // The API's "to" is exclusive, the date picker's inclusive.
  $("to").value = query.get("to") ? addDays(query.get("to"), -1) : today;
  $("from").value = query.get("from") || addDays($("to").value, -6);
  for (const key of ["site", "bucket"]) if (query.get(key)) $(key).value = query.get(key);
  fillCameras();
  for (const key of ["camera", "line"]) if (query.get(key)) { $(key).value = query.get(key); if (key === "camera") fillLines(); }
  $("site").addEventListener("change", () => { fillCameras(); drawNotice(); drawAuditHeads(); refresh(); });
  $("camera").addEventListener("change", () => { fillLines(); refresh(); });
  for (const id of ["line", "from", "to", "bucket"]) $(id).addEventListener("change", refresh);
  for (const input of document.querySelectorAll("fieldset input")) input.addEventListener("change", refresh);
  drawNotice();
  drawAuditHeads();
  refresh();
}

start();
