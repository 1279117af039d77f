// The dashboard page: plain JavaScript and SVG, served by the package, nothing from a CDN.
// It only reads the JSON API; a token, if the dashboard needs one, comes in the page's
// fragment (#token=...), which browsers never send to a server or put in its logs.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
// The page's words in English and French; the data (names, numbers) is never translated.
const TEXT = {
  en: {
    tagline: "Anonymous counts per time window: no image, no identifier, no trajectory is ever collected.",
    language: "Language", site: "Site", camera: "Camera", line: "Line", from: "From", to: "To", per: "Per",
    "15min": "15 minutes", hour: "hour", day: "day", direction: "Direction", category: "Category",
    in: "in", out: "out", pedestrian: "pedestrians", bike: "bikes", vehicle: "vehicles",
    download: "Download", openapi: "API description (OpenAPI)", data_table: "Data table",
    compare: "Lines compared",
    compare_note: "Every line of the site or camera picked, one curve each, on one scale: passages per bucket in the directions and categories picked.",
    profile: "Hour of day by weekday",
    profile_note: "Mean passages per hour over the days of the range that have data, by weekday and hour of the day.",
    split: "Modal split", zones: "Zone occupancy",
    zones_note: "Objects present on average while the camera watched, and at the peak, over the range. Groups smaller than the policy's floor count as 0 at the source.",
    movements: "Turning movements",
    movements_note: "Objects that passed one line (row), then another (column), per camera, over the range and the categories picked: an origin-destination matrix. Cells left blank are not measured.",
    completeness: "Data completeness", anchors: "Audit log anchors",
    anchors_note: "The latest heads of each box's audit log, kept here, off the box: \"edge audit verify FILE --expect-head HEAD --expect-entries ENTRIES\" fails on a log cut short or rewritten before them.",
    notice: "Public information notice", all_sites: "all sites", all_cameras: "all cameras", all_lines: "all lines",
    offline: "offline", counts_per: "Counts per {bucket}: {what}", no_data: "No window was received for this selection and range.",
    total: "{d}: total over the range", no_week: "no data the week before", last7: "last 7 days {now} vs {before}: {change}",
    bucket: "bucket", weekday: "weekday", days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    share: "{n} ({p} %)", mean: "mean", peak: "peak", zone: "zone", watched: "hours watched",
    no_zone: "No zone is counted here.", no_movement: "No turning movement is counted here (cameras[].movements in the box's configuration).",
    from_to: "{camera}: from \\ to", cols: ["camera", "windows received / expected", "complete", "partial windows", "hours watched", "offline (h)", "now"],
    online: "online", unknown: "unknown", heads: ["site", "published (UTC)", "entries", "head (sha256)"],
    no_notice: "No notice received from this site yet.", policy_at: "Policy {policy} (sha256 {sha}…), published at ",
    licence: "Open data under ", attribution: ", attribution: {who}", zone_note: ". Days and hours in {tz}.",
    load_error: "Could not load the counts ({error}).", start_error: "Could not load the dashboard ({error}).",
  },
  fr: {
    tagline: "Comptages anonymes par période : aucune image, aucun identifiant, aucune trajectoire n'est jamais collectée.",
    language: "Langue", site: "Site", camera: "Caméra", line: "Ligne", from: "Du", to: "Au", per: "Par",
    "15min": "15 minutes", hour: "heure", day: "jour", direction: "Sens", category: "Catégorie",
    in: "entrée", out: "sortie", pedestrian: "piétons", bike: "vélos", vehicle: "véhicules",
    download: "Télécharger", openapi: "Description de l'API (OpenAPI)", data_table: "Tableau des données",
    compare: "Lignes comparées",
    compare_note: "Chaque ligne du site ou de la caméra choisis, une courbe chacune, sur une même échelle : passages par période dans les sens et catégories choisis.",
    profile: "Heure du jour par jour de la semaine",
    profile_note: "Passages moyens par heure sur les jours de la période qui ont des données, par jour de la semaine et heure du jour.",
    split: "Répartition modale", zones: "Occupation des zones",
    zones_note: "Objets présents en moyenne pendant l'observation, et au maximum, sur la période. Les groupes plus petits que le seuil de la politique comptent pour 0 à la source.",
    movements: "Mouvements tournants",
    movements_note: "Objets qui ont franchi une ligne (en ligne), puis une autre (en colonne), par caméra, sur la période et les catégories choisies : une matrice origine-destination. Les cases vides ne sont pas mesurées.",
    completeness: "Complétude des données", anchors: "Ancres du journal d'audit",
    anchors_note: "Les dernières têtes du journal d'audit de chaque boîtier, conservées ici, hors du boîtier : \"edge audit verify FICHIER --expect-head TETE --expect-entries ENTREES\" échoue sur un journal tronqué ou réécrit avant elles.",
    notice: "Notice d'information du public", all_sites: "tous les sites", all_cameras: "toutes les caméras", all_lines: "toutes les lignes",
    offline: "hors ligne", counts_per: "Comptages par {bucket} : {what}", no_data: "Aucune période reçue pour cette sélection.",
    total: "{d} : total sur la période", no_week: "pas de données la semaine précédente", last7: "7 derniers jours {now} contre {before} : {change}",
    bucket: "période", weekday: "jour", days: ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
    share: "{n} ({p} %)", mean: "moyenne", peak: "maximum", zone: "zone", watched: "heures observées",
    no_zone: "Aucune zone n'est comptée ici.", no_movement: "Aucun mouvement tournant n'est compté ici (cameras[].movements dans la configuration du boîtier).",
    from_to: "{camera} : de \\ vers", cols: ["caméra", "périodes reçues / attendues", "complétude", "périodes partielles", "heures observées", "hors ligne (h)", "maintenant"],
    online: "en ligne", unknown: "inconnu", heads: ["site", "publiée (UTC)", "entrées", "tête (sha256)"],
    no_notice: "Aucune notice reçue de ce site.", policy_at: "Politique {policy} (sha256 {sha}…), publiée à ",
    licence: "Données ouvertes sous ", attribution: ", attribution : {who}", zone_note: ". Jours et heures en {tz}.",
    load_error: "Impossible de charger les comptages ({error}).", start_error: "Impossible de charger le tableau de bord ({error}).",
  },
};
const query0 = new URLSearchParams(location.search);
const lang = (query0.get("lang") || navigator.language || "en").toLowerCase().startsWith("fr") ? "fr" : "en";
function t(key, vars) {
  let text = TEXT[lang][key];
  for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
  return text;
}
const LABELS = { pedestrian: t("pedestrian"), bike: t("bike"), vehicle: t("vehicle") };
const num = (n) => n.toLocaleString(lang === "fr" ? "fr-FR" : "en-GB");
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
  option($("camera"), "", t("all_cameras"));
  for (const c of site ? site.cameras : []) option($("camera"), c.camera, c.camera + (c.online === false ? ` (${t("offline")})` : ""));
  if ([...$("camera").options].some((o) => o.value === keep)) $("camera").value = keep;
  fillLines();
}

function fillLines() {
  const site = sites.find((s) => s.site === $("site").value);
  const cameras = site ? site.cameras.filter((c) => !$("camera").value || c.camera === $("camera").value) : [];
  const keep = $("line").value;
  $("line").replaceChildren();
  option($("line"), "", t("all_lines"));
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
    empty.textContent = t("no_data");
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
  // One scale for both halves: the same round step of gridlines above and below the axis.
  const step = niceStep(Math.max(up, down), 3);
  for (const [limit, sign] of [[up, -1], [down, 1]]) {
    for (let value = step; value <= limit; value += step) {
      const y = zero + sign * value * scale;
      svg.append(element("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }));
      svg.append(element("text", { x: left - 6, y: y + 4, "text-anchor": "end", "data-grid": sign * value }, `${num(value)}`));
    }
  }
  svg.setAttribute("data-scale", scale);
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
  drawTicks(svg, t0, t1, counts.tz, xOf, height - bottom);
  const edge = { x: width - right, "text-anchor": "end" };
  if (directions.includes("in")) svg.append(element("text", { ...edge, y: top - 3 }, `${t("in")} ↑`));
  if (directions.includes("out")) svg.append(element("text", { ...edge, y: height - bottom + 12 }, `${t("out")} ↓`));
  svg.setAttribute("data-total-in", totals.in);
  svg.setAttribute("data-total-out", totals.out);
  svg.setAttribute("data-buckets", buckets.length);
  $("chart").replaceChildren(svg);
  $("legend").replaceChildren(...directions.flatMap((d) => categories.map((c) => {
    const s = document.createElement("span"); s.style.setProperty("--c", COLOURS[d][c]); s.textContent = `${LABELS[c]} ${t(d)}`; return s;
  })));
}

// A round step for about `parts` gridlines up to `max`: 1, 2 or 5 times a power of ten.
function niceStep(max, parts) {
  const raw = Math.max(max / parts, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= raw);
}

// Ticks on whole local hours or days of the dashboard's time zone, about ten at most, each
// label written once: hours within a day, days (and the hour) across days, the year past 300 days.
function timeTicks(t0, t1, tz) {
  const hour = 3600e3, span = t1 - t0;
  const daily = span > 2 * 86400e3;
  const format = new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB",
    { timeZone: tz, hourCycle: "h23", hour: "2-digit", day: "2-digit", month: "short", year: "numeric" });
  const marks = [];
  for (let m = Math.ceil(t0 / hour) * hour; m <= t1; m += hour) {
    const p = Object.fromEntries(format.formatToParts(m).map((x) => [x.type, x.value]));
    if (!daily || p.hour === "00") marks.push({ m, p });
  }
  const steps = daily ? [1, 2, 7, 14, 28, 91, 182] : [1, 2, 3, 6, 12, 24];
  const step = steps.find((v) => marks.length / v <= 10) || steps[steps.length - 1];
  const kept = marks.filter(({ p }, i) => (daily ? i % step === 0 : Number(p.hour) % step === 0));
  const text = ({ p }) => {
    const date = `${p.day} ${p.month}${span > 300 * 86400e3 ? ` ${p.year}` : ""}`;
    if (daily) return date;
    return span > 86400e3 ? `${date} ${p.hour}:00` : `${p.hour}:00`;
  };
  return kept.map((mark) => ({ m: mark.m, text: text(mark) }));
}

function drawTicks(svg, t0, t1, tz, xOf, baseline) {
  for (const tick of timeTicks(t0, t1, tz)) {
    const x = xOf(new Date(tick.m).toISOString());
    svg.append(element("line", { class: "axis", x1: x, x2: x, y1: baseline, y2: baseline + 4 }));
    const anchor = x < 60 ? "start" : x > 1040 ? "end" : "middle"; // kept inside the chart
    svg.append(element("text", { x, y: baseline + 18, "text-anchor": anchor, class: "tick" }, tick.text));
  }
}

function drawTable(buckets, directions, categories) {
  const head = [t("bucket"), ...directions.flatMap((d) => categories.map((c) => `${LABELS[c]} ${t(d)}`))];
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
    card.querySelector(".label").textContent = t("total", { d: t(d) });
    card.querySelector(".value").textContent = num(sum(summary.totals, d));
    const text = change === null ? t("no_week") : `${change >= 0 ? "+" : ""}${change.toFixed(1)} %`;
    const changeNode = card.querySelector(".change");
    changeNode.textContent = t("last7", { now: num(now), before: num(before), change: text });
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
    fillTable(table, [t("from_to", { camera }), ...destinations], origins.map((o) => [o, ...destinations.map((d) => value(o, d))]));
    tables.push(table);
  }
  if (!tables.length) {
    const none = document.createElement("p");
    none.textContent = t("no_movement");
    tables.push(none);
  }
  $("movements").replaceChildren(...tables);
}

// A counts row's passages in the picked directions and categories.
function passages(row, directions, categories) {
  return directions.reduce((a, d) => a + categories.reduce((b, c) => b + ((row[d] || {})[c] || 0), 0), 0);
}

// One curve per line on one scale: the picked directions and categories summed per bucket.
const SERIES = ["#1f6feb", "#d1495b", "#2da44e", "#8250df", "#bf8700", "#0a3069", "#f4a259", "#57606a"];
function drawCompare(counts, directions, categories) {
  const series = new Map();
  for (const row of counts.rows) {
    const key = `${row.site} / ${row.camera} / ${row.line}`;
    if (!series.has(key)) series.set(key, []);
    const n = passages(row, directions, categories);
    series.get(key).push({ start: row.start, end: row.end, n });
  }
  if (!series.size) { $("compare").replaceChildren(); $("compare-legend").replaceChildren(); return; }
  const width = 1100, height = 260, left = 52, right = 10, top = 10, bottom = 30;
  const t0 = Date.parse(counts.from), t1 = Date.parse(counts.to);
  const xOf = (iso) => left + ((Date.parse(iso) - t0) / (t1 - t0)) * (width - left - right);
  const max = Math.max(1, ...[...series.values()].flat().map((p) => p.n));
  const step = niceStep(max, 4), top_ = Math.ceil(max / step) * step;
  const yOf = (n) => height - bottom - (n / top_) * (height - top - bottom);
  const svg = element("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Lines compared" });
  for (let v = 0; v <= top_; v += step) {
    svg.append(element("line", { class: v ? "grid" : "axis", x1: left, x2: width - right, y1: yOf(v), y2: yOf(v) }));
    svg.append(element("text", { x: left - 6, y: yOf(v) + 4, "text-anchor": "end" }, num(v)));
  }
  const legend = [];
  [...series.entries()].forEach(([key, points], i) => {
    const colour = SERIES[i % SERIES.length];
    const d = points.map((p, j) => `${j ? "L" : "M"}${((xOf(p.start) + xOf(p.end)) / 2).toFixed(1)},${yOf(p.n).toFixed(1)}`).join(" ");
    svg.append(element("path", { d, fill: "none", stroke: colour, "stroke-width": 2, "data-series": key,
      "data-total": points.reduce((a, p) => a + p.n, 0), "data-points": points.length }));
    const span = document.createElement("span"); span.style.setProperty("--c", colour); span.textContent = key; legend.push(span);
  });
  drawTicks(svg, t0, t1, counts.tz, xOf, height - bottom);
  $("compare").replaceChildren(svg);
  $("compare-legend").replaceChildren(...legend);
}

// Weekday x hour of day: the mean of each hour over the days of the range that have data there.
function drawProfile(hourly, directions, categories) {
  const format = new Intl.DateTimeFormat("en-GB", { timeZone: hourly.tz, hourCycle: "h23", weekday: "short", hour: "2-digit", day: "2-digit", month: "2-digit" });
  const index = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };
  const sums = Array.from({ length: 7 }, () => Array(24).fill(0));
  const days = Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => new Set()));
  for (const row of hourly.rows) {
    const p = Object.fromEntries(format.formatToParts(Date.parse(row.start)).map((x) => [x.type, x.value]));
    const w = index[p.weekday], h = Number(p.hour);
    sums[w][h] += passages(row, directions, categories);
    days[w][h].add(`${p.day}/${p.month}`);
  }
  const mean = sums.map((r, w) => r.map((n, h) => (days[w][h].size ? n / days[w][h].size : null)));
  const max = Math.max(1, ...mean.flat().filter((v) => v !== null));
  const table = $("profile");
  const head = document.createElement("tr");
  for (const text of [t("weekday"), ...Array.from({ length: 24 }, (_, h) => `${h}`)]) {
    const th = document.createElement("th"); th.textContent = text; head.append(th);
  }
  const rows = mean.map((values, w) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = t("days")[w]; tr.append(th);
    values.forEach((v, h) => {
      const td = document.createElement("td");
      td.dataset.weekday = w; td.dataset.hour = h;
      if (v !== null) {
        td.textContent = v < 10 ? v.toFixed(1) : Math.round(v);
        td.dataset.mean = v;
        td.style.background = `rgba(31,111,235,${(0.08 + 0.8 * (v / max)).toFixed(3)})`;
      }
      tr.append(td);
    });
    return tr;
  });
  table.replaceChildren(head, ...rows);
}

// The share of each category in the passages of the range (directions picked).
function drawSplit(totals, directions, categories) {
  const n = Object.fromEntries(categories.map((c) => [c, directions.reduce((a, d) => a + ((totals[d] || {})[c] || 0), 0)]));
  const all = Object.values(n).reduce((a, b) => a + b, 0);
  const bars = categories.map((c) => {
    const share = all ? (100 * n[c]) / all : 0;
    const row = document.createElement("div");
    row.className = "split"; row.dataset.category = c; row.dataset.count = n[c];
    row.innerHTML = '<span class="name"></span><span class="bar"><span></span></span><span class="value"></span>';
    row.querySelector(".name").textContent = LABELS[c];
    row.querySelector(".bar span").style.width = `${share.toFixed(1)}%`;
    row.querySelector(".bar span").style.background = COLOURS.in[c];
    row.querySelector(".value").textContent = t("share", { n: num(n[c]), p: share.toFixed(1) });
    return row;
  });
  $("split").replaceChildren(...bars);
}

function drawZones(document_, categories) {
  if (!document_.zones.length) {
    const none = document.createElement("p"); none.textContent = t("no_zone");
    $("zones").replaceChildren(none);
    return;
  }
  const table = document.createElement("table");
  table.id = "zones-table";
  fillTable(table, [t("zone"), t("watched"), ...categories.flatMap((c) => [`${LABELS[c]} ${t("mean")}`, `${LABELS[c]} ${t("peak")}`])],
    document_.zones.map((z) => [`${z.site} / ${z.camera} / ${z.zone}`, (z.observed_s / 3600).toFixed(1),
      ...categories.flatMap((c) => [z.mean[c].toFixed(2), z.max[c]])]));
  // A bar per zone and category: the mean, solid, and the peak, a tick, on one scale.
  const peak = Math.max(1, ...document_.zones.flatMap((z) => categories.map((c) => z.max[c])));
  const rowHeight = 16, width = 1100, left = 260, height = document_.zones.length * categories.length * rowHeight + 24;
  const xOf = (v) => left + (v / peak) * (width - left - 20);
  const svg = element("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": t("zones"), id: "zones-chart" });
  let y = 4;
  for (const z of document_.zones) {
    for (const c of categories) {
      svg.append(element("text", { x: left - 8, y: y + 11, "text-anchor": "end" }, `${z.camera} / ${z.zone}: ${LABELS[c]}`));
      svg.append(element("rect", { x: left, y: y + 2, width: xOf(z.mean[c]) - left, height: rowHeight - 5,
        fill: COLOURS.in[c], "data-zone": `${z.camera}/${z.zone}`, "data-category": c, "data-mean": z.mean[c] }));
      svg.append(element("line", { x1: xOf(z.max[c]), x2: xOf(z.max[c]), y1: y, y2: y + rowHeight - 1, stroke: COLOURS.out[c],
        "stroke-width": 2, "data-zone": `${z.camera}/${z.zone}`, "data-category": c, "data-peak": z.max[c] }));
      y += rowHeight;
    }
  }
  const step = niceStep(peak, 4);
  for (let v = 0; v <= peak; v += step) svg.append(element("text", { x: xOf(v), y: height - 4, "text-anchor": "middle" }, num(v)));
  $("zones").replaceChildren(svg, table);
}

function drawCompleteness(rows) {
  const hours = (s) => (s / 3600).toFixed(1);
  fillTable($("completeness"), t("cols"),
    rows.map((r) => [`${r.site} / ${r.camera}`, `${r.received} / ${r.expected}`,
      r.ratio === null ? "–" : `${(100 * r.ratio).toFixed(1)} %`, r.partial, hours(r.observed_s), hours(r.offline_s),
      r.online === null ? t("unknown") : r.online ? t("online") : t("offline")]));
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
    $("notice-link").replaceChildren(t("policy_at", { policy: notice.policy, sha: notice.policy_sha256.slice(0, 12) }), a);
  } catch (_) {
    $("notice-link").textContent = t("no_notice");
  }
}

async function drawAuditHeads() {
  const site = $("site").value;
  try {
    const params = new URLSearchParams({ limit: "10" });
    if (site) params.set("site", site);
    const heads = await api("/api/audit-heads", params);
    fillTable($("audit-heads"), t("heads"),
      heads.map((h) => [h.site, h.time, h.entries, h.head]));
  } catch (_) {
    $("audit-heads").replaceChildren();
  }
}

async function refresh() {
  const mine = ++generation;
  const params = selection();
  const directions = checked("direction"), categories = checked("category");
  const shown = new URLSearchParams(params);
  if (query0.get("lang")) shown.set("lang", lang);
  history.replaceState(null, "", `?${shown}${location.hash}`);
  for (const [id, kind] of [["csv", "csv"], ["json", "json"]]) {
    const download = new URLSearchParams(params);
    if (token) download.set("token", token);
    $(id).href = `/api/counts.${kind}?${download}`;
  }
  $("chart").setAttribute("aria-busy", "true");
  try {
    const every = new URLSearchParams(params); every.delete("line"); // all lines, to compare
    const hourly = new URLSearchParams(params); hourly.set("bucket", "hour");
    const [counts, summary, completeness, movements, zones, lines, hours] = await Promise.all([
      api("/api/counts", params), api("/api/summary", params), api("/api/completeness", params),
      api("/api/movements", params), api("/api/zones", params), api("/api/counts", every),
      api("/api/counts", hourly),
    ]);
    if (mine !== generation) return;
    const buckets = byBucket(counts.rows, directions, categories);
    const what = [$("site").value || t("all_sites"), $("camera").value, $("line").value].filter(Boolean).join(" / ");
    $("chart-title").textContent = t("counts_per", { bucket: $("bucket").selectedOptions[0].textContent, what });
    drawChart(buckets, directions, categories, counts);
    drawTable(buckets, directions, categories);
    drawSummary(summary, directions, categories);
    drawCompleteness(completeness);
    drawMovements(movements, categories);
    drawCompare(lines, directions, categories);
    drawProfile(hours, directions, categories);
    drawSplit(summary.totals, directions, categories);
    drawZones(zones, categories);
    $("error").hidden = true;
  } catch (err) {
    $("error").textContent = t("load_error", { error: err.message });
    $("error").hidden = false;
  } finally {
    if (mine === generation) $("chart").setAttribute("aria-busy", "false");
  }
}

// The page's own words in the chosen language; the picker keeps it across reloads.
function translatePage() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("lang").value = lang;
  $("lang").addEventListener("change", () => {
    const query = new URLSearchParams(location.search);
    query.set("lang", $("lang").value);
    location.search = `?${query}`;
  });
}

async function start() {
  const query = new URLSearchParams(location.search);
  translatePage();
  try {
    const [config, list] = await Promise.all([api("/api/config"), api("/api/sites")]);
    sites = list;
    timezone = config.timezone;
    document.title = $("title").textContent = config.title;
    const licence = document.createElement("a");
    licence.href = config.licence_url || "#"; licence.textContent = config.licence;
    $("licence").replaceChildren(t("licence"), licence, config.attribution ? t("attribution", { who: config.attribution }) : "",
      t("zone_note", { tz: config.timezone }));
  } catch (err) {
    $("error").textContent = t("start_error", { error: err.message });
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
