// The commissioning page: plain JavaScript on a canvas over the low-resolution background.
// The token comes in the URL fragment (#token=...), which browsers never send to a server.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const HANDLE = 9; // px on screen: how near a click must be to an end or a corner
const COLOURS = { pedestrian: "#54aeff", bike: "#f4a259", vehicle: "#d1495b" };
let frame = [1, 1]; // the source's size: drafts are kept in its pixels
let lines = [], zones = [];
let live = { boxes: [], trails: [], passages: [] };
let mode = null; // null, "line", "zone"
let selected = null; // { kind: "line"|"zone", index }
let dragging = null; // { kind, index, point } or { kind: "new-line", index }
let pendingZone = null;

async function api(path, body) {
  const init = { headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (path.endsWith(".png")) return response.blob();
  const doc = await response.json();
  if (!response.ok && !doc.problems) throw new Error(doc.detail || response.statusText);
  return doc;
}

const canvas = $("canvas");
const ctx = canvas.getContext("2d");
function scale() { return canvas.width / frame[0]; }
function toFrame(event) {
  const r = canvas.getBoundingClientRect();
  const k = frame[0] / r.width;
  return [Math.round((event.clientX - r.left) * k), Math.round((event.clientY - r.top) * k)];
}
function near(a, b) { return Math.hypot(a[0] - b[0], a[1] - b[1]) * (canvas.getBoundingClientRect().width / frame[0]) <= HANDLE; }
function uniqueName(prefix) {
  const taken = new Set([...lines, ...zones].map((x) => x.name));
  for (let i = 1; ; i++) if (!taken.has(`${prefix}${i}`)) return `${prefix}${i}`;
}

function draw() {
  const k = scale();
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const flashing = new Set(live.passages.map((p) => p.line));
  zones.forEach((z, i) => {
    ctx.beginPath();
    z.points.forEach(([x, y], j) => (j ? ctx.lineTo(x * k, y * k) : ctx.moveTo(x * k, y * k)));
    ctx.closePath();
    ctx.fillStyle = "rgba(31,111,235,0.15)"; ctx.fill();
    ctx.strokeStyle = selected && selected.kind === "zone" && selected.index === i ? "#ffd33d" : "#1f6feb";
    ctx.lineWidth = 2; ctx.stroke();
    z.points.forEach(([x, y]) => ctx.strokeRect(x * k - 3, y * k - 3, 6, 6));
    ctx.fillStyle = "#fff"; ctx.fillText(z.name, z.points[0][0] * k + 6, z.points[0][1] * k - 6);
  });
  if (pendingZone) {
    ctx.beginPath();
    pendingZone.forEach(([x, y], j) => (j ? ctx.lineTo(x * k, y * k) : ctx.moveTo(x * k, y * k)));
    ctx.strokeStyle = "#ffd33d"; ctx.stroke();
  }
  lines.forEach((l, i) => {
    const [ax, ay] = l.start.map((v) => v * k), [bx, by] = l.end.map((v) => v * k);
    ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by);
    ctx.strokeStyle = flashing.has(l.name) ? "#2da44e" : selected && selected.kind === "line" && selected.index === i ? "#ffd33d" : "#fff";
    ctx.lineWidth = flashing.has(l.name) ? 6 : 3; ctx.stroke();
    // "in": towards the left-hand side of someone walking from start to end, on screen.
    const length = Math.hypot(bx - ax, by - ay) || 1;
    const nx = (by - ay) / length, ny = -(bx - ax) / length;
    const mx = (ax + bx) / 2, my = (ay + by) / 2;
    ctx.beginPath(); ctx.moveTo(mx - nx * 14, my - ny * 14); ctx.lineTo(mx + nx * 14, my + ny * 14);
    ctx.lineTo(mx + nx * 8 - ny * 5, my + ny * 8 + nx * 5); ctx.moveTo(mx + nx * 14, my + ny * 14);
    ctx.lineTo(mx + nx * 8 + ny * 5, my + ny * 8 - nx * 5); ctx.lineWidth = 2; ctx.stroke();
    ctx.fillStyle = "#fff"; ctx.fillText(`${l.name} (in)`, mx + nx * 18, my + ny * 18);
    for (const [x, y] of [[ax, ay], [bx, by]]) ctx.strokeRect(x - 4, y - 4, 8, 8);
  });
  ctx.lineWidth = 1.5;
  for (const [x1, y1, x2, y2, category] of live.boxes) {
    ctx.strokeStyle = COLOURS[category] || "#fff";
    ctx.strokeRect(x1 * k, y1 * k, (x2 - x1) * k, (y2 - y1) * k);
  }
  ctx.strokeStyle = "rgba(255,255,255,0.8)";
  for (const trail of live.trails) {
    ctx.beginPath();
    trail.forEach(([x, y], j) => (j ? ctx.lineTo(x * k, y * k) : ctx.moveTo(x * k, y * k)));
    ctx.stroke();
  }
}

function select(target) {
  selected = target;
  const item = target && (target.kind === "line" ? lines : zones)[target.index];
  $("name").disabled = $("delete").disabled = !item;
  $("name").value = item ? item.name : "";
  draw();
}

function hit(point) {
  for (const [kind, list, keys] of [["line", lines, ["start", "end"]], ["zone", zones, null]]) {
    for (let i = 0; i < list.length; i++) {
      const points = keys ? keys.map((key) => list[i][key]) : list[i].points;
      const j = points.findIndex((p) => near(p, point));
      if (j >= 0) return { kind, index: i, point: keys ? keys[j] : j };
    }
  }
  return null;
}

async function sync() {
  try {
    const answer = await api("/api/draft", { lines, zones });
    showProblems(answer.problems);
  } catch (err) { showProblems([err.message]); }
}

function showProblems(problems) {
  $("problems").replaceChildren(...(problems || []).map((p) => { const li = document.createElement("li"); li.textContent = p; return li; }));
}

function setMode(next) {
  mode = next;
  $("add-line").classList.toggle("active", mode === "line");
  $("add-zone").classList.toggle("active", mode === "zone");
  $("finish-zone").hidden = mode !== "zone";
  if (mode !== "zone") pendingZone = null;
}

canvas.addEventListener("mousedown", (event) => {
  const point = toFrame(event);
  if (mode === "line") {
    lines.push({ name: uniqueName("line"), start: point, end: point });
    dragging = { kind: "line", index: lines.length - 1, point: "end" };
    select({ kind: "line", index: lines.length - 1 });
    return;
  }
  if (mode === "zone") {
    pendingZone = [...(pendingZone || []), point];
    draw();
    return;
  }
  const found = hit(point);
  if (found) { dragging = found; select(found); return; }
  // A click on a line's body or inside a zone selects it.
  const k = canvas.getBoundingClientRect().width / frame[0];
  const onLine = lines.findIndex((l) => distanceToSegment(point, l.start, l.end) * k <= HANDLE);
  if (onLine >= 0) { select({ kind: "line", index: onLine }); return; }
  const inZone = zones.findIndex((z) => inside(point, z.points));
  select(inZone >= 0 ? { kind: "zone", index: inZone } : null);
});

canvas.addEventListener("mousemove", (event) => {
  if (!dragging) return;
  const point = toFrame(event).map((v, i) => Math.max(0, Math.min(frame[i], v)));
  if (dragging.kind === "line") lines[dragging.index][dragging.point] = point;
  else zones[dragging.index].points[dragging.point] = point;
  draw();
});

window.addEventListener("mouseup", () => {
  if (!dragging) return;
  const line = dragging.kind === "line" && lines[dragging.index];
  if (line && line.start[0] === line.end[0] && line.start[1] === line.end[1]) lines.splice(dragging.index, 1), select(null);
  dragging = null;
  if (mode === "line") setMode(null);
  sync(); draw();
});

function distanceToSegment(p, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy || 1)));
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
}
function inside(p, points) {
  let result = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i], [xj, yj] = points[j];
    if ((yi > p[1]) !== (yj > p[1]) && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) result = !result;
  }
  return result;
}

$("add-line").addEventListener("click", () => setMode(mode === "line" ? null : "line"));
$("add-zone").addEventListener("click", () => setMode(mode === "zone" ? null : "zone"));
$("finish-zone").addEventListener("click", () => {
  if (pendingZone && pendingZone.length >= 3) {
    zones.push({ name: uniqueName("zone"), points: pendingZone });
    select({ kind: "zone", index: zones.length - 1 });
    sync();
  }
  setMode(null); draw();
});
$("delete").addEventListener("click", () => {
  if (!selected) return;
  (selected.kind === "line" ? lines : zones).splice(selected.index, 1);
  select(null); sync();
});
$("name").addEventListener("input", () => {
  if (!selected) return;
  (selected.kind === "line" ? lines : zones)[selected.index].name = $("name").value;
  draw();
});
$("name").addEventListener("change", sync);
$("save").addEventListener("click", async () => {
  $("status").textContent = "saving…"; $("status").className = "";
  try {
    const answer = await api("/api/save", { lines, zones });
    showProblems(answer.problems);
    $("status").textContent = answer.ok ? "saved" : "not saved: see below";
    $("status").className = answer.ok ? "ok" : "bad";
  } catch (err) {
    $("status").textContent = `not saved (${err.message})`; $("status").className = "bad";
  }
});

async function poll() {
  try {
    live = await api("/api/state");
    if (live.errors.length) { $("status").textContent = live.errors[0]; $("status").className = "bad"; }
    draw();
  } catch (_) { /* the session ended: keep the last picture */ }
  setTimeout(poll, 250);
}

async function start() {
  const [state, image] = await Promise.all([api("/api/state"), api("/api/background.png")]);
  frame = state.frame;
  lines = state.lines; zones = state.zones; live = state;
  $("camera").textContent = state.camera;
  const background = $("background");
  background.addEventListener("load", () => {
    canvas.width = 960; canvas.height = Math.round((960 * frame[1]) / frame[0]);
    draw();
    document.body.dataset.ready = "true";
    poll();
  }, { once: true });
  background.src = URL.createObjectURL(image);
}

start().catch((err) => { $("status").textContent = `cannot load the session (${err.message})`; $("status").className = "bad"; });
