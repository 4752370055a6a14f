"use strict";
// vsvsr serve: the page. Plain JS, no build step, nothing loaded from elsewhere.

const $ = (sel) => document.querySelector(sel);
const state = { config: null, dir: "", input: null, facts: null,
                previewBusy: false, previewAgain: false, streams: new Map() };

class ApiError extends Error {
  constructor(status, text) { super(text); this.status = status; }
}

async function api(method, url, body, raw) {
  const init = { method, headers: {} };
  if (raw !== undefined) { init.body = raw; }
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const res = await fetch(url, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function showError(err) {
  const box = $("#error");
  box.textContent = err ? (err.message || String(err)) : "";
  box.hidden = !err;
}

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtTime(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  if (s < 10) return `${s.toFixed(1)} s`;
  s = Math.round(s);
  const m = Math.floor(s / 60), r = s % 60;
  return m ? `${m}:${String(r).padStart(2, "0")}` : `${r} s`;
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const c of children) node.append(c);
  return node;
}

// ---- settings -------------------------------------------------------------------------
function fillSelect(sel, items, chosen) {
  for (const it of items) {
    const opt = el("option", { value: it.value, textContent: it.label, disabled: !!it.disabled, title: it.title || "" });
    sel.append(opt);
  }
  if (chosen !== undefined) sel.value = chosen;
}

function settings() {
  return {
    input: state.input,
    model: $("#model").value,
    backend: $("#backend").value,
    matrix: $("#matrix").value || null,
    scene_detect: $("#scene-detect").checked,
    codec: $("#codec").value,
    crf: Number($("#crf").value),
    preset: $("#preset").value,
  };
}

function defaultOutput() {
  if (!state.input) return "";
  const slash = state.input.lastIndexOf("/");
  const dir = slash >= 0 ? state.input.slice(0, slash + 1) : "";
  const name = state.input.slice(slash + 1);
  const stem = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : name;
  const model = $("#model").value.replace(/\.(onnx|pth)$/i, "");
  const ext = $("#codec").value === "libvpx-vp9" ? "webm" : "mkv";
  return `${dir}${stem}_${model}.${ext}`;
}

// ---- file browser ---------------------------------------------------------------------
async function loadDir(dir) {
  const data = await api("GET", `/api/files?dir=${encodeURIComponent(dir)}`);
  state.dir = dir;
  const crumbs = $("#crumbs");
  crumbs.replaceChildren();
  const parts = dir ? dir.split("/") : [];
  crumbs.append(el("button", { type: "button", textContent: state.config.root + "/", onclick: () => loadDir("").catch(showError) }));
  parts.forEach((p, i) => {
    const target = parts.slice(0, i + 1).join("/");
    crumbs.append(el("button", { type: "button", textContent: p + "/", onclick: () => loadDir(target).catch(showError) }));
  });
  const list = $("#files");
  list.replaceChildren();
  if (!data.entries.length) list.append(el("li", { className: "empty", textContent: "no videos here" }));
  for (const e of data.entries) {
    const li = el("li", { className: e.kind + (e.path === state.input ? " selected" : "") },
                  el("span", { className: "name", textContent: e.name }),
                  el("span", { className: "size", textContent: e.kind === "video" ? fmtBytes(e.size) : "" }));
    li.dataset.path = e.path;
    li.onclick = () => (e.kind === "dir" ? loadDir(e.path) : selectVideo(e.path)).catch(showError);
    list.append(li);
  }
}

async function selectVideo(path) {
  showError(null);
  state.input = path;
  for (const li of document.querySelectorAll("#files li")) li.classList.toggle("selected", li.dataset.path === path);
  $("#preview-time").textContent = "Reading the video…";
  const facts = await api("GET", `/api/facts?path=${encodeURIComponent(path)}`);
  state.facts = facts;
  const rows = [
    ["file", path], ["size", `${facts.width}×${facts.height}, ${fmtBytes(facts.bytes)}`],
    ["frames", `${facts.frames} at ${facts.fps} fps (${fmtTime(facts.duration)})`],
    ["format", facts.format], ["matrix", facts.matrix],
    ["audio", facts.audio.length ? facts.audio.join(", ") : "none"],
  ];
  const body = $("#facts tbody");
  body.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", { textContent: k }), el("td", { textContent: v }))));
  $("#facts").hidden = false;
  const frame = $("#frame");
  frame.max = String(Math.max(0, facts.frames - 1));
  frame.value = "0";
  frame.disabled = false;
  $("#output").value = defaultOutput();
  $("#run").disabled = false;
  requestPreview();
}

async function upload() {
  const file = $("#upload-file").files[0];
  if (!file) { showError(new Error("choose a file to upload first")); return; }
  if (file.size > state.config.max_upload) {
    showError(new Error(`${file.name} is ${fmtBytes(file.size)}; the limit is ${fmtBytes(state.config.max_upload)}`));
    return;
  }
  const url = (overwrite) => `/api/upload?dir=${encodeURIComponent(state.dir)}&name=${encodeURIComponent(file.name)}${overwrite ? "&overwrite=1" : ""}`;
  $("#upload-note").textContent = `uploading ${file.name}…`;
  try {
    let res;
    try { res = await api("PUT", url(false), undefined, file); }
    catch (e) {
      if (e.status !== 409 || !confirm(`${e.message}\n\nReplace it?`)) throw e;
      res = await api("PUT", url(true), undefined, file);
    }
    $("#upload-note").textContent = `uploaded ${res.path} (${fmtBytes(res.bytes)})`;
    await loadDir(state.dir);
    await selectVideo(res.path);
  } catch (e) { $("#upload-note").textContent = ""; showError(e); }
}

// ---- preview ---------------------------------------------------------------------------
function requestPreview() {
  if (!state.input) return;
  $("#frame-label").textContent = `${$("#frame").value} / ${$("#frame").max}`;
  if (state.previewBusy) { state.previewAgain = true; return; }
  state.previewBusy = true;
  state.previewAgain = false;
  const frame = Number($("#frame").value);
  $("#preview-time").textContent = `computing frame ${frame}…`;
  api("POST", "/api/preview", { ...settings(), frame })
    .then((p) => {
      $("#img-bicubic").src = p.bicubic;
      $("#img-vsvsr").src = p.vsvsr;
      $("#img-vsvsr").dataset.frame = String(p.frame);
      $("#vsvsr-caption").textContent = `vsvsr ${$("#model").value}`;
      const s = p.seconds;
      $("#preview-time").textContent =
        `frame ${p.frame}, ${p.width}×${p.height} (×${p.scale}): vsvsr ${(s.vsvsr * 1000).toFixed(0)} ms ` +
        `(exact, from the frame's reset point), bicubic ${(s.bicubic * 1000).toFixed(0)} ms` +
        (s.graph > 0.05 ? `, setup ${(s.graph * 1000).toFixed(0)} ms` : "");
      showError(null);
    })
    .catch((e) => { $("#preview-time").textContent = "no preview"; showError(e); })
    .finally(() => {
      state.previewBusy = false;
      if (state.previewAgain) requestPreview();
    });
}

function applyWipe() {
  const mode = $("#preview-mode").value;
  const pos = Number($("#wipe").value);
  $("#preview").className = mode;
  $("#wipe-label").hidden = mode !== "wipe";
  $("#wipe-line").hidden = mode !== "wipe";
  $("#img-vsvsr").style.clipPath = mode === "wipe" ? `inset(0 0 0 ${pos}%)` : "";
  $("#wipe-line").style.left = `${pos}%`;
}

// ---- jobs ------------------------------------------------------------------------------
async function runJob() {
  showError(null);
  const body = { ...settings(), output: $("#output").value.trim() };
  try {
    let job;
    try { job = await api("POST", "/api/jobs", body); }
    catch (e) {
      if (e.status !== 409 || !/exists/.test(e.message) || !confirm(`${e.message}\n\nReplace it?`)) throw e;
      job = await api("POST", "/api/jobs", { ...body, overwrite: true });
    }
    renderJob(job);
    follow(job);
  } catch (e) { showError(e); }
}

function jobRow(job) {
  let row = document.getElementById(`job-${job.id}`);
  if (!row) {
    row = el("tr", { id: `job-${job.id}` });
    const tbody = $("#jobs tbody");
    // newest first
    const after = [...tbody.children].find((r) => Number(r.id.slice(4)) < job.id);
    tbody.insertBefore(row, after || null);
  }
  return row;
}

function renderJob(job) {
  const row = jobRow(job);
  const pct = job.frames_total ? Math.floor((100 * job.frames_done) / job.frames_total) : 0;
  const o = job.options;
  const stats = job.frames_total
    ? `${pct} % · ${job.frames_done} / ${job.frames_total} frames · ${job.fps.toFixed(2)} fps` +
      (job.state === "running" ? ` · ETA ${fmtTime(job.eta)}` : "")
    : (job.state === "running" ? "starting…" : "");
  const actions = el("td", { className: "actions" });
  if (job.state === "queued" || job.state === "running") {
    actions.append(el("button", { type: "button", className: "cancel", textContent: "Cancel",
      onclick: () => api("POST", `/api/jobs/${job.id}/cancel`).then(renderJob).catch(showError) }));
  }
  if (job.state === "done") {
    actions.append(el("a", { className: "download", href: `/api/jobs/${job.id}/download`, textContent: "Download",
                             download: job.output.split("/").pop() }));
  }
  const info = el("td", {},
    el("div", { textContent: `${job.input} → ${job.output}` }),
    el("div", { className: "stats", textContent: `${o.model}, ${o.backend}, ${o.codec} crf ${o.crf}${o.scene_detect ? ", scene detection" : ""}` }));
  if (job.error) info.append(el("div", { className: "error", textContent: job.error }));
  if (job.log) {
    const d = el("details", {}, el("summary", { textContent: "log" }), el("pre", { textContent: job.log }));
    const old = row.querySelector("details");
    if (old && old.open) d.open = true;
    info.append(d);
  }
  const bar = el("progress", { max: 100, value: pct });
  row.replaceChildren(
    el("td", { textContent: String(job.id) }),
    info,
    el("td", { className: `state state-${job.state}`, textContent: job.state }),
    el("td", {}, bar, el("div", { className: "stats", textContent: stats })),
    actions);
  row.dataset.state = job.state;
  row.dataset.percent = String(pct);
}

function follow(job) {
  if (state.streams.has(job.id) || !(job.state === "queued" || job.state === "running")) return;
  const es = new EventSource(`/api/jobs/${job.id}/events`);
  state.streams.set(job.id, es);
  es.addEventListener("job", (ev) => renderJob(JSON.parse(ev.data)));
  es.addEventListener("end", () => { es.close(); state.streams.delete(job.id); });
  // On a dropped connection (server restart) EventSource reconnects by itself.
}

async function loadJobs() {
  const data = await api("GET", "/api/jobs");
  for (const job of data.jobs.slice().reverse()) { renderJob(job); follow(job); }
}

// ---- start -----------------------------------------------------------------------------
async function init() {
  const cfg = await api("GET", "/api/config");
  state.config = cfg;
  $("#root-note").textContent = `serving ${cfg.root}/ · ${cfg.jobs} job(s) at once, ${cfg.queue} waiting · uploads up to ${fmtBytes(cfg.max_upload)}`;
  $("#upload-note").textContent = `up to ${fmtBytes(cfg.max_upload)}, into the folder shown`;
  fillSelect($("#model"), cfg.models.map((m) => ({ value: m.name, label: m.name, title: m.description })), cfg.default_model);
  fillSelect($("#backend"), cfg.backends.map((b) => ({ value: b.name, label: b.available ? b.name : `${b.name} (unavailable)`, title: b.detail })), "auto");
  fillSelect($("#matrix"), cfg.matrices.map((m) => ({ value: m, label: m })));
  fillSelect($("#codec"), cfg.codecs.map((c) => ({ value: c, label: c })), "libx264");
  fillSelect($("#preset"), cfg.presets.map((p) => ({ value: p, label: p })), "medium");
  $("#frame").addEventListener("input", requestPreview);
  for (const id of ["#model", "#backend", "#matrix", "#scene-detect"]) $(id).addEventListener("change", requestPreview);
  for (const id of ["#model", "#codec"]) $(id).addEventListener("change", () => { $("#output").value = defaultOutput(); });
  $("#preview-mode").addEventListener("change", applyWipe);
  $("#wipe").addEventListener("input", applyWipe);
  $("#upload-btn").addEventListener("click", upload);
  $("#run").addEventListener("click", runJob);
  applyWipe();
  await loadDir("");
  await loadJobs();
}

init().catch(showError);
