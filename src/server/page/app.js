// The search page: a query image (or a clicked result) plus filters →
// POST /search → a grid of thumbnails. Plain DOM, no framework.
"use strict";

const $ = (id) => document.getElementById(id);
let queryFile = null; // the uploaded image, if any
let likeId = null; // the id of a clicked result, if any
let inFlight = null; // the running request, aborted by the next one

async function loadStats() {
  try {
    const s = await (await fetch("/stats")).json();
    const enc = s.encoder ? `${s.encoder.name} ${s.encoder.version}` : "no encoder";
    $("stats").textContent = `${s.documents} documents · ${s.bits}-bit codes · ${enc} · ${s.execution_provider || "no image search"}`;
  } catch {
    $("stats").textContent = "server not reachable";
  }
}

function filterQuery() {
  const parts = [];
  const lo = $("grade-min").value, hi = $("grade-max").value;
  if (lo !== "" || hi !== "") parts.push(`grade:[${lo === "" ? 0 : lo} TO ${hi === "" ? 4 : hi}]`);
  if ($("eye").value) parts.push(`eye:${$("eye").value}`);
  if ($("modality").value) parts.push(`modality:${$("modality").value}`);
  return parts.join(" AND ");
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function search() {
  const text = $("text").value.trim();
  const filter = filterQuery();
  if (!queryFile && !likeId && !text) {
    setStatus("Pick an image, click a result, or type words to search for.");
    return;
  }
  const fields = { k: $("k").value, mode: $("mode").value };
  if (text) fields.text = text;
  if (filter) fields.filter = filter;
  let init;
  if (queryFile) {
    const form = new FormData();
    form.append("image", queryFile);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    init = { method: "POST", body: form };
  } else {
    const body = { ...fields, k: Number(fields.k) };
    if (likeId) body.like = likeId;
    init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  }
  if (inFlight) inFlight.abort();
  inFlight = new AbortController();
  setStatus("Searching…");
  try {
    const res = await fetch("/search", { ...init, signal: inFlight.signal });
    const out = await res.json();
    if (!res.ok) {
      setStatus(out.error ? out.error.message : `error ${res.status}`, true);
      return;
    }
    render(out.hits);
    if (out.query && out.query.attention) drawAttention(out.query.attention);
    setStatus(`${out.hits.length} results in ${out.took_ms.toFixed(1)} ms`);
  } catch (e) {
    if (e.name !== "AbortError") setStatus(`request failed: ${e.message}`, true);
  }
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A busy server answers a thumbnail 503 after its queue wait; try again a
// few times, a second apart, before leaving the image broken.
function retryWhenBusy(img, tries = 3) {
  let left = tries;
  img.addEventListener("error", () => {
    if (left-- <= 0) return;
    const src = img.src;
    setTimeout(() => { img.src = src; }, 1000);
  });
}

function render(hits) {
  const grid = $("results");
  grid.replaceChildren();
  for (const h of hits) {
    const card = el("button", "hit");
    card.type = "button";
    card.dataset.id = h.id;
    card.title = `search like ${h.id}`;
    if (h.thumbnail_url) {
      const img = el("img");
      img.loading = "lazy";
      img.alt = `case ${h.id}`;
      img.src = `${h.thumbnail_url}?size=256`;
      retryWhenBusy(img);
      card.append(img);
    } else {
      card.append(el("div", "noimg", "no image"));
    }
    const f = h.fields || {};
    const meta = el("div", "meta");
    const top = el("div", "row");
    top.append(el("span", "id", h.id), el("span", "distance", h.distance === null ? "–" : `d=${h.distance}`));
    const mid = el("div", "row");
    mid.append(
      el("span", "badge grade", f.grade === undefined ? "grade –" : `grade ${f.grade}`),
      el("span", "badge eye", f.eye || "–"),
      el("span", "date", f.acquired ? String(f.acquired).slice(0, 10) : ""),
    );
    meta.append(top, mid, el("div", "report", f.report || ""));
    card.append(meta);
    card.addEventListener("click", () => searchLike(h.id));
    grid.append(card);
  }
}

function searchLike(id) {
  likeId = id;
  queryFile = null;
  $("file").value = "";
  $("query-image").src = `/documents/${encodeURIComponent(id)}/thumbnail?size=256`;
  $("attention-figure").hidden = true;
  $("query-view").hidden = false;
  $("like-id").textContent = id;
  $("like-view").hidden = false;
  search();
}

function setQueryFile(file) {
  if (!file) return;
  queryFile = file;
  likeId = null;
  $("like-view").hidden = true;
  const url = URL.createObjectURL(file);
  $("query-image").src = url;
  $("attention-base").src = url;
  $("attention-figure").hidden = true;
  $("query-view").hidden = false;
  search();
}

// Draws the attention map (values in [0, 1]) as a red-to-yellow heat map.
function drawAttention(a) {
  const canvas = $("attention");
  canvas.width = a.width;
  canvas.height = a.height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(a.width, a.height);
  let lo = Infinity, hi = -Infinity;
  for (const v of a.values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi - lo || 1;
  a.values.forEach((v, i) => {
    const t = (v - lo) / span;
    img.data[4 * i] = 255;
    img.data[4 * i + 1] = Math.round(255 * t);
    img.data[4 * i + 2] = 0;
    img.data[4 * i + 3] = Math.round(255 * t);
  });
  ctx.putImageData(img, 0, 0);
  $("attention-figure").hidden = false;
}

$("file").addEventListener("change", (e) => setQueryFile(e.target.files[0]));
$("query").addEventListener("submit", (e) => { e.preventDefault(); search(); });
$("clear-like").addEventListener("click", () => {
  likeId = null;
  $("like-view").hidden = true;
  $("query-view").hidden = true;
});
for (const id of ["grade-min", "grade-max", "eye", "modality", "k", "mode"]) {
  $(id).addEventListener("change", () => { if (queryFile || likeId || $("text").value.trim()) search(); });
}
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  setQueryFile(e.dataTransfer.files[0]);
});
loadStats();
