// endoveil GUI: plain JavaScript, no build step; nothing is fetched from the internet.
// Authentication: the page holds the session token (in this origin's storage, which no other
// port or site can read) and sends it as a header. There is no cookie: cookies of 127.0.0.1
// reach every port of 127.0.0.1. The token comes from a one-time launch token in the printed
// link's fragment, or from the password (--host).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

// ---------------------------------------------------------------------------------------
// API and notices

const TOKEN_KEY = "endoveil-token";
const token = () => localStorage.getItem(TOKEN_KEY) || "";

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function request(method, path, body) {
  const init = { method, credentials: "omit", headers: { "X-Endoveil-Token": token() } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    const detail = typeof data.detail === "string" ? data.detail : response.statusText;
    const signIn = path.startsWith("/api/login") || path.startsWith("/api/launch");
    if ((response.status === 401 || response.status === 403) && !signIn && /session token/.test(detail)) {
      localStorage.removeItem(TOKEN_KEY); // a token of an earlier start of the server
      showSignIn();
    }
    throw new ApiError(response.status, detail);
  }
  return response;
}

async function api(method, path, body) {
  const response = await request(method, path, body);
  return response.json().catch(() => ({}));
}

// The printed link opens the page with #launch=<one-time token>: exchange it for the session
// token, then drop it from the address bar and the history.
async function redeemLaunch() {
  const match = location.hash.match(/^#launch=([A-Za-z0-9_-]+)/);
  if (!match) return;
  history.replaceState(null, "", "/#work");
  try {
    const got = await api("POST", "/api/launch", { launch: match[1] });
    localStorage.setItem(TOKEN_KEY, got.token);
  } catch (err) {
    if (!token()) notify(err.message, true);
  }
}

let noticeTimer = 0;
function notify(message, isError = false) {
  const box = $("#notice");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, isError ? 9000 : 4000);
}
const fail = (err) => notify(err.message || String(err), true);

const fmtTime = (s) => {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  const m = Math.floor(s / 60), sec = s - 60 * m;
  return `${m}:${sec.toFixed(2).padStart(5, "0")}`;
};
const fmtEta = (s) => (s === null || s === undefined ? "–" : s < 90 ? `${Math.ceil(s)} s` : `${Math.round(s / 60)} min`);

// Tables refresh every second; keep the keyboard focus on the same control across a refresh.
function keepFocus(rebuild) {
  const key = document.activeElement && document.activeElement.dataset.key;
  rebuild();
  if (key) {
    const again = document.querySelector(`[data-key="${key}"]`);
    if (again) again.focus();
  }
}
const keyed = (node, key) => { node.dataset.key = key; return node; };
let lastReviews = "", lastJobs = "";

// ---------------------------------------------------------------------------------------
// Pages and theme

const state = { session: null, page: "work", reviewId: null, timers: {} };

function showPage(page, push = true) {
  state.page = page;
  for (const section of $$(".page")) section.hidden = section.id !== `page-${page}`;
  for (const tab of $$(".tab")) {
    if (tab.dataset.page === page) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (push) {
    let hash = page === "review" && state.reviewId ? `#review/${state.reviewId}` : `#${page}`;
    if (page === "report") hash = `#report/${state.reportId}`;
    history.replaceState(null, "", hash);
  }
  if (page === "work") loadReviews();
  if (page === "queue") loadJobs();
  if (page === "review") openReview(state.reviewId);
  if (page === "live") refreshLive();
  if (page === "report") renderReport(state.reportId);
}

function showSignIn() {
  for (const section of $$(".page")) section.hidden = section.id !== "page-signin";
  $$(".tab").forEach((t) => { t.disabled = true; });
  api("GET", "/api/auth").then((a) => { $("#login").hidden = !a.password; }).catch(() => {});
}

function initTheme() {
  const saved = localStorage.getItem("endoveil-theme");
  if (saved) document.documentElement.dataset.theme = saved;
  $("#theme").addEventListener("click", () => {
    const dark = getComputedStyle(document.documentElement).colorScheme.includes("dark");
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("endoveil-theme", next);
    drawTimeline();
  });
}

// ---------------------------------------------------------------------------------------
// Work page: folder picker and settings

// The choice: several videos, patient folders or archives at once (path -> kind).
const work = { folder: null, chosen: new Map() };

async function browse(path) {
  let listing;
  $("#choose-folder").disabled = true; // until the new folder is shown, "this folder" is unclear
  try {
    listing = await api("GET", path ? `/api/fs?path=${encodeURIComponent(path)}` : "/api/fs");
  } catch (err) { fail(err); return; }
  work.folder = listing.path;
  const crumbs = $("#crumbs");
  crumbs.replaceChildren(el("button", { type: "button", textContent: "Folders", onclick: () => browse(null) }));
  if (listing.path) {
    const root = state.session.roots.find((r) => listing.path === r || listing.path.startsWith(r + "/"));
    const rest = listing.path.slice(root.length).split("/").filter(Boolean);
    let current = root;
    crumbs.append(" / ", el("button", { type: "button", textContent: root, onclick: () => browse(root) }));
    for (const part of rest) {
      current = `${current}/${part}`;
      const target = current;
      crumbs.append(" / ", el("button", { type: "button", textContent: part, onclick: () => browse(target) }));
    }
  }
  const list = $("#entries");
  list.replaceChildren();
  if (listing.parent) {
    list.append(el("li", {}, el("button", { type: "button", className: "open", textContent: "../ (up)", onclick: () => browse(listing.parent) })));
  }
  for (const entry of listing.entries) {
    // A tick chooses the entry; a folder's name opens it. Folders end in "/" (as ls -F).
    const tick = el("input", { type: "checkbox", checked: work.chosen.has(entry.path) });
    tick.dataset.path = entry.path;
    tick.setAttribute("aria-label", `Choose ${entry.name}`);
    tick.addEventListener("change", () => toggleChosen(entry.path, entry.kind, tick.checked));
    const label = entry.kind === "folder" ? `${entry.name}/` : entry.name;
    const name = el("button", { type: "button", className: "open", textContent: label },
      entry.kind === "video" ? el("small", { textContent: ` · video, ${(entry.size / 1e6).toFixed(1)} MB` }) : null);
    name.dataset.path = entry.path;
    name.addEventListener("click", () => (entry.kind === "folder" ? browse(entry.path) : toggleChosen(entry.path, "video", !work.chosen.has(entry.path))));
    list.append(el("li", {}, tick, name));
  }
  if (!listing.entries.length) list.append(el("li", { className: "empty", textContent: "No folders or videos here." }));
  $("#choose-folder").disabled = !listing.path;
  $("#choose-folder").textContent = listing.path ? `Add this folder (${listing.path.split("/").pop()})` : "Add this folder";
}

function toggleChosen(path, kind, on) {
  if (on) work.chosen.set(path, kind); else work.chosen.delete(path);
  renderChosen();
}

function renderChosen() {
  const box = $("#chosen");
  box.replaceChildren();
  if (!work.chosen.size) box.textContent = "nothing yet";
  for (const [path, kind] of work.chosen) {
    const what = kind === "folder" ? "folder: a patient's, or one per case" : "video";
    const remove = el("button", { type: "button", className: "link", textContent: "remove", onclick: () => toggleChosen(path, kind, false) });
    remove.setAttribute("aria-label", `Remove ${path} from the choice`);
    box.append(el("span", { className: "pill" }, el("strong", { textContent: path }), ` (${what}) `, remove));
  }
  $$("#entries input[type=checkbox]").forEach((b) => { b.checked = work.chosen.has(b.dataset.path); });
  updateStartLabel();
}

function updateStartLabel() {
  const form = $("#settings");
  const unattended = form.elements.unattended.checked;
  $("#start").disabled = !work.chosen.size;
  $("#start").textContent = unattended ? "Run unattended (no review)" : "Detect, then review";
  $(".hmac-only").hidden = form.elements.pseudonym.value !== "hmac";
}

function fillDefaults(defaults) {
  const form = $("#settings");
  for (const [name, value] of Object.entries(defaults)) {
    const field = form.elements[name];
    if (!field || field instanceof RadioNodeList) continue;
    if (field.type === "checkbox") field.checked = Boolean(value);
    else field.value = value === null ? "" : value;
  }
  form.elements.mode.value = defaults.mode;
}

function readSettings() {
  const f = $("#settings").elements;
  return {
    mode: f.mode.value,
    action: f.action.value,
    threshold: f.threshold.value === "" ? null : Number(f.threshold.value),
    margin_s: Number(f.margin_s.value || 0),
    output: f.output.value.trim(),
    mapping_log: f.mapping_log.value.trim(),
    pseudonym: f.pseudonym.value,
    secret_file: f.secret_file.value.trim(),
    keep_audio: f.keep_audio.checked,
    keep_names: f.keep_names.checked,
    force: f.force.checked,
    unattended: f.unattended.checked,
  };
}

async function startWork(event) {
  event.preventDefault();
  if (!work.chosen.size) return;
  const box = $("#work-warnings");
  try {
    const made = await api("POST", "/api/work", { paths: [...work.chosen.keys()], settings: readSettings() });
    const n = made.reviews.length;
    box.replaceChildren(...made.warnings.map((w) => el("p", { textContent: `⚠ ${w}` })));
    box.hidden = !made.warnings.length;
    work.chosen.clear();
    renderChosen();
    notify(n ? `${n} case(s) queued for detection` : "Batch queued");
    if (!made.warnings.length) showPage("queue");
  } catch (err) { fail(err); }
}

async function loadReviews() {
  let reviews;
  try { reviews = await api("GET", "/api/reviews"); } catch (err) { return; }
  const text = JSON.stringify(reviews);
  if (text === lastReviews) return;
  lastReviews = text;
  keepFocus(() => renderReviews(reviews));
}

function renderReviews(reviews) {
  const body = $("#reviews tbody");
  body.replaceChildren();
  $("#reviews").hidden = !reviews.length;
  $("#reviews-empty").hidden = Boolean(reviews.length);
  for (const review of reviews.reverse()) {
    const exported = review.export;
    let result = "";
    if (exported && exported.video) result = `${exported.verified ? "✔ verified" : "not verified"} · ${exported.video}${exported.mapping_log ? ` · mapping log: ${exported.mapping_log}` : ""}`;
    else if (review.reviewed) result = "reviewed, not exported";
    if (review.warning) result = `⚠ ${review.warning}${result ? " · " + result : ""}`;
    const open = keyed(el("button", { type: "button", textContent: review.status === "exported" ? "Open" : "Review", onclick: () => { state.reviewId = review.id; showPage("review"); } }), `review-${review.id}-open`);
    open.disabled = review.status === "detecting";
    const remove = keyed(el("button", { type: "button", className: "link", textContent: "Forget", onclick: () => forgetReview(review) }), `review-${review.id}-forget`);
    const name = review.pseudonym ? `${review.title} → ${review.pseudonym}` : review.title;
    body.append(el("tr", {},
      el("td", { textContent: name }),
      el("td", {}, el("span", { className: `badge ${review.status}`, textContent: review.status })),
      el("td", { className: "small", textContent: result }),
      el("td", {}, open, remove)));
  }
}

async function forgetReview(review) {
  if (!confirm(`Forget the review of ${review.title}? Its merged video and labels in the GUI's data folder are deleted; exported files stay.`)) return;
  try { await api("DELETE", `/api/reviews/${review.id}`); loadReviews(); } catch (err) { fail(err); }
}

// ---------------------------------------------------------------------------------------
// Queue page

async function loadJobs() {
  let jobs;
  try { jobs = await api("GET", "/api/jobs"); } catch (err) { return; }
  const active = jobs.filter((j) => j.status === "queued" || j.status === "running").length;
  $("#queue-count").textContent = active ? String(active) : "";
  if (state.page !== "queue") return;
  const text = JSON.stringify(jobs);
  if (text === lastJobs) return;
  lastJobs = text;
  keepFocus(() => {
    const body = $("#jobs tbody");
    body.replaceChildren();
    $("#jobs").hidden = !jobs.length;
    $("#jobs-empty").hidden = Boolean(jobs.length);
    for (const job of jobs) body.append(jobRow(job));
  });
}

function jobRow(job) {
  const p = job.progress || {};
  const progress = el("td");
  if (p.total) {
    progress.append(el("progress", { max: p.total, value: p.done, textContent: `${p.done}/${p.total}` }),
      el("div", { className: "small", textContent: `${p.stage}: ${p.done} / ${p.total} frames` }));
  } else if (p.stage) progress.append(el("div", { className: "small", textContent: p.stage }));
  let speed = p.fps ? `${p.fps} fps` : "";
  if (job.status === "running" && p.fps) speed += ` · ${fmtEta(p.eta_s)} left`;
  const actions = el("td");
  if (job.status === "queued" || job.status === "running") {
    actions.append(keyed(el("button", { type: "button", textContent: "Cancel", onclick: () => jobAction(job, "cancel") }), `job-${job.id}-cancel`));
  }
  if (["failed", "cancelled", "interrupted"].includes(job.status)) {
    actions.append(keyed(el("button", { type: "button", textContent: "Resume", onclick: () => jobAction(job, "resume") }), `job-${job.id}-resume`));
  }
  if (job.result && job.result.report) {
    actions.append(keyed(el("button", { type: "button", textContent: "Report", onclick: () => openReport(job.id) }), `job-${job.id}-report`));
  }
  if (job.review_id && job.kind === "export" && job.status === "failed") {
    actions.append(keyed(el("button", { type: "button", textContent: "Open review", onclick: () => { state.reviewId = job.review_id; showPage("review"); } }), `job-${job.id}-open`));
  }
  if (job.review_id && job.kind === "detect" && job.status === "done") {
    actions.append(keyed(el("button", { type: "button", textContent: "Review", onclick: () => { state.reviewId = job.review_id; showPage("review"); } }), `job-${job.id}-review`));
  }
  const status = el("td", {}, el("span", { className: `badge ${job.status}`, textContent: job.status }));
  if (job.error) status.append(el("div", { className: "error small", textContent: job.error }));
  const result = job.result || {};
  if (job.status === "done" && result.video) {
    status.append(el("div", { className: "small", textContent: `${result.verified ? "✔ verified" : ""} ${result.video}` }));
  }
  const log = result.mapping_log || (job.kind === "batch" && job.params.settings && job.params.settings.mapping_log);
  if (job.status === "done" && log) {
    status.append(el("div", { className: "small", textContent: `Mapping log (names the patients; keep it private): ${log}` }));
  }
  if (result.cases) {
    for (const c of result.cases) {
      status.append(el("div", { className: "small", textContent: `case ${c.case}: ${c.status}${c.verified ? " ✔ verified" : ""} ${c.video || c.detail}` }));
    }
  }
  const row = el("tr", {}, el("td", { textContent: job.title }), status, progress, el("td", { className: "mono", textContent: speed }), actions);
  row.dataset.job = job.id;
  return row;
}

// ---------------------------------------------------------------------------------------
// Report page: what an export did, in words

function openReport(jobId) {
  state.reportId = jobId;
  showPage("report");
}

const fact = (name, value, cls = "") => [el("dt", { textContent: name }), el("dd", { className: cls, textContent: value })];

async function renderReport(jobId) {
  const box = $("#report");
  box.replaceChildren(el("p", { className: "empty", textContent: "Loading the report…" }));
  let data;
  try { data = await api("GET", `/api/jobs/${jobId}/summary`); } catch (err) { fail(err); return; }
  const job = data.job, result = job.result || {};
  const back = el("button", { type: "button", textContent: "◀ Back to the queue", onclick: () => showPage("queue") });
  const head = el("div", { className: "review-head" }, el("h2", { textContent: `Report: ${job.title}` }), el("span", { className: "spacer" }), back);
  const parts = [head];
  const v = data.verify;
  if (v) {
    const verdict = v.ok
      ? "✔ Verified: every out-of-body frame is hidden, every in-body frame is intact."
      : `✘ Verification failed (${v.problem_count} problem(s)): the output was deleted.`;
    parts.push(el("p", { className: `verdict ${v.ok ? "ok" : "bad"}`, textContent: verdict }));
  }
  const facts = el("dl", { className: "facts" });
  if (data.review) facts.append(...fact("Case", `${data.review.title} → ${data.review.pseudonym || "(own name)"}`));
  if (result.video) facts.append(...fact("Anonymized video", result.video, "mono"));
  if (result.labels) facts.append(...fact("Labels", result.labels, "mono"));
  if (data.mapping_log) facts.append(...fact("Mapping log", `${data.mapping_log} (names the patients: keep it private, never share it)`, "mono"));
  const out = data.output || {};
  if (out.frames_total !== undefined) {
    facts.append(...fact("Video", `${out.frames_total} frames, ${fmtTime(out.duration_s)}${out.reviewed ? ", labels reviewed" : ", labels as detected"}`));
    facts.append(...fact("Hidden", `${out.frames_anonymized ?? 0} frame(s) ${HIDDEN_BY[out.action] || out.action || ""}${out.frames_cut ? `, ${out.frames_cut} cut out` : ""}`));
    facts.append(...fact("In-body frames", `${out.inbody_frames_reencoded ?? 0} re-encoded${out.mode === "fast" ? " (fast mode copies the others bit for bit)" : " (exact mode re-encodes every frame)"}, ${out.inbody_frames_lost ?? 0} lost`));
    facts.append(...fact("Mode", out.mode || "–"));
  }
  if (v) facts.append(...fact("Frames checked", `${v.frames_checked} (${v.oob_frames} out of body)`));
  parts.push(facts);
  if (data.hidden.length) {
    parts.push(el("h3", { textContent: `What was hidden (${data.hidden.length} segment(s))` }));
    const table = el("table", { className: "list" }, el("thead", {}, el("tr", {}, ...["#", "from", "to", "frames"].map((h) => el("th", { scope: "col", textContent: h })))));
    const body = el("tbody");
    data.hidden.forEach((h, i) => body.append(el("tr", {}, el("td", { textContent: String(i + 1) }), el("td", { textContent: fmtTime(h.start_s) }), el("td", { textContent: fmtTime(h.end_s) }), el("td", { textContent: String(h.frames) }))));
    table.append(body);
    parts.push(table);
  } else if (out.frames_total !== undefined) parts.push(el("p", { textContent: "Nothing was hidden: no out-of-body segment." }));
  if (result.cases) {
    parts.push(el("h3", { textContent: "Cases" }));
    for (const c of result.cases) parts.push(el("p", { textContent: `case ${c.case} → ${c.pseudonym}: ${c.status}${c.verified ? " ✔ verified" : ""} ${c.video || c.detail || ""}` }));
  }
  if (v && (v.problems.length || v.findings.length)) {
    parts.push(el("h3", { textContent: "Findings" }));
    const list = el("ul");
    for (const item of [...v.problems, ...v.findings]) list.append(el("li", { textContent: item }));
    parts.push(list);
  }
  box.replaceChildren(...parts);
}

async function clearJobs() {
  try {
    const got = await api("DELETE", "/api/jobs/finished");
    notify(`${got.cleared} finished or failed job(s) cleared from the queue`);
    lastJobs = "";
    loadJobs();
  } catch (err) { fail(err); }
}

async function jobAction(job, action) {
  try { await api("POST", `/api/jobs/${job.id}/${action}`); loadJobs(); } catch (err) { fail(err); }
}

// ---------------------------------------------------------------------------------------
// Review page: player, timeline, segments

const rv = {
  data: null, segments: [], selected: -1, frame: 0, dirty: false, drag: null,
  get count() { return this.data ? this.data.video.frame_count : 0; },
};

function frameTime(i) {
  const t = rv.data.frame_times;
  return i >= t.length ? rv.data.video.duration_s : t[Math.max(0, i)];
}

function frameAt(seconds) {
  const t = rv.data.frame_times;
  let lo = 0, hi = t.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (t[mid] <= seconds + 1e-4) lo = mid; else hi = mid - 1;
  }
  return lo;
}

async function openReview(id) {
  clearInterval(state.timers.review);
  $("#review-empty").hidden = Boolean(id);
  $("#review").hidden = !id;
  if (!id) return;
  let data;
  try { data = await api("GET", `/api/reviews/${id}`); } catch (err) { fail(err); return; }
  $("#review-title").textContent = data.pseudonym ? `${data.title} → ${data.pseudonym}` : data.title;
  const badge = $("#review-status");
  badge.textContent = data.status;
  badge.className = `badge ${data.status}`;
  const ready = Boolean(data.segments);
  $("#review-body").hidden = !ready;
  $("#review-wait").hidden = ready;
  for (const b of ["#save", "#export", "#replace"]) $(b).disabled = !ready || !["ready", "exported", "failed"].includes(data.status);
  const earlier = data.earlier_export || [];
  $("#replace").hidden = !earlier.length;
  $("#export").hidden = Boolean(earlier.length);
  const note = $("#review-note");
  const exported = data.export;
  note.hidden = !(earlier.length || (exported && exported.mapping_log));
  note.textContent = [
    earlier.length ? `An earlier export is in the output folder (${earlier.map((f) => f.split("/").pop()).join(", ")}): “Replace the earlier export…” writes the corrected one in its place.` : "",
    exported && exported.mapping_log ? `Mapping log (names the patients; keep it private): ${exported.mapping_log}` : "",
  ].filter(Boolean).join(" ");
  if (!ready) {
    $("#review-wait").textContent = data.status === "failed"
      ? "Detection failed: see the Queue page for why, then resume it there."
      : "Detection is running; the review opens when it is done (progress on the Queue page).";
    state.timers.review = setInterval(() => { if (state.page === "review") openReview(id); }, 1500);
    return;
  }
  const same = rv.data && rv.data.id === id && rv.data.frame_times;
  if (same && (rv.dirty || JSON.stringify(rv.data.segments) === JSON.stringify(data.segments))) {
    rv.data = data; // a status refresh: keep the playhead and any unsaved edits
    drawTimeline(); // the page may have been hidden (e.g. when the theme changed)
    if (data.status === "exporting") {
      state.timers.review = setInterval(() => { if (state.page === "review") openReview(id); }, 1500);
    }
    return;
  }
  rv.data = data;
  rv.segments = data.segments.map((s) => ({ start_frame: s.start_frame, end_frame: s.end_frame }));
  rv.selected = rv.segments.length ? 0 : -1;
  setDirty(false);
  setupPlayer();
  renderSegments();
  seek(rv.segments.length ? rv.segments[0].start_frame : 0);
  if (data.status === "exporting") {
    state.timers.review = setInterval(() => { if (state.page === "review") openReview(id); }, 1500);
  }
}

function setupPlayer() {
  const video = $("#video"), still = $("#still");
  const id = rv.data.id;
  video.hidden = !rv.data.playable;
  still.hidden = rv.data.playable;
  $("#unplayable").hidden = rv.data.playable;
  $("#play").disabled = !rv.data.playable;
  if (rv.data.playable) {
    // A signed URL for this one video, valid for minutes (a <video> cannot send a header).
    if (rv.videoFor !== id) {
      rv.videoFor = id;
      rv.videoUrlAt = Date.now();
      video.src = rv.data.video_url;
    }
  } else {
    video.removeAttribute("src");
    $("#unplayable").textContent = `This browser cannot play this video (${rv.data.not_playable_because}): review it from the frames decoded on the server.`;
  }
}

function seek(frame) {
  rv.frame = Math.max(0, Math.min(rv.count - 1, frame));
  if (rv.data.playable) {
    const video = $("#video");
    // The middle of the frame's display time: the decoder shows exactly this frame.
    const next = rv.frame + 1 < rv.count ? frameTime(rv.frame + 1) : rv.data.video.duration_s;
    const at = (frameTime(rv.frame) + next) / 2;
    if (Date.now() - rv.videoUrlAt > VIDEO_URL_REFRESH_MS) renewVideoUrl(at);
    else video.currentTime = at;
  } else {
    loadThumb($("#still"), rv.frame, 640);
  }
  updateClock();
  drawTimeline();
}

// Signed media URLs expire after five minutes: renew before seeking with an old one, and
// when the player fails to fetch (keeping the playhead).
const VIDEO_URL_REFRESH_MS = 4 * 60 * 1000;
async function renewVideoUrl(at) {
  if (!rv.data || !rv.data.playable || rv.renewing) return;
  rv.renewing = true;
  const video = $("#video");
  const id = rv.data.id;
  const time = at === undefined ? video.currentTime : at;
  try {
    const got = await api("GET", `/api/reviews/${id}/video-url`);
    if (!rv.data || rv.data.id !== id) return;
    rv.videoUrlAt = Date.now();
    video.src = got.url;
    video.addEventListener("loadedmetadata", () => { video.currentTime = time; }, { once: true });
  } catch (err) { /* signed out: handled by api() */ } finally { rv.renewing = false; }
}

// Thumbnails are fetched with the session header and shown from memory (blob: URLs).
const thumbCache = new Map();
const THUMB_CACHE_MAX = 600;
function loadThumb(img, frame, width) {
  const key = `${rv.data.id}/${frame}/${width}`;
  img.dataset.thumb = key;
  if (thumbCache.has(key)) { img.src = thumbCache.get(key); return; }
  request("GET", `/api/reviews/${rv.data.id}/thumb?frame=${frame}&width=${width}`)
    .then((r) => r.blob())
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      thumbCache.set(key, url);
      if (thumbCache.size > THUMB_CACHE_MAX) {
        const [oldest, oldUrl] = thumbCache.entries().next().value;
        thumbCache.delete(oldest);
        URL.revokeObjectURL(oldUrl);
      }
      if (img.dataset.thumb === key) img.src = url;
    })
    .catch(() => {});
}

function updateClock() {
  $("#clock").textContent = `${fmtTime(frameTime(rv.frame))} · frame ${rv.frame} / ${rv.count - 1}`;
}

function setDirty(dirty) {
  rv.dirty = dirty;
  $("#review-dirty").hidden = !dirty;
}

function sortSegments() {
  const chosen = rv.segments[rv.selected];
  rv.segments.sort((a, b) => a.start_frame - b.start_frame);
  rv.selected = chosen ? rv.segments.indexOf(chosen) : -1;
}

function changed() {
  sortSegments();
  setDirty(true);
  renderSegments();
  drawTimeline();
}

function select(index, jump = true) {
  rv.selected = index;
  renderSegments();
  if (jump && rv.segments[index]) seek(rv.segments[index].start_frame);
  else drawTimeline();
}

function thumb(frame, oob, width = 160) {
  if (frame < 0 || frame >= rv.count) return el("img", { alt: "", src: "data:," });
  const img = el("img", { alt: `frame ${frame}${oob ? " (hidden)" : ""}`, className: oob ? "oob" : "" });
  loadThumb(img, frame, width);
  return img;
}

// The model's own segment inside a (padded) segment: where it put the edges itself.
function modelSegment(seg) {
  return (rv.data.model_segments || []).find((m) => m.start_frame < seg.end_frame && m.end_frame > seg.start_frame) || null;
}

function renderSegments() {
  const list = $("#segments");
  list.replaceChildren();
  $("#seg-count").textContent = String(rv.segments.length);
  $("#segs-empty").hidden = rv.segments.length > 0;
  rv.segments.forEach((seg, i) => {
    const start = frameTime(seg.start_frame), end = frameTime(seg.end_frame);
    const pick = el("button", { type: "button", className: "pick", textContent: `${i + 1}. ${fmtTime(start)} – ${fmtTime(end)} (${seg.end_frame - seg.start_frame} frames)`, onclick: () => select(i) });
    const remove = el("button", { type: "button", className: "link", textContent: "Remove", onclick: () => { rv.selected = i; removeSelected(); } });
    remove.setAttribute("aria-label", `Remove segment ${i + 1}`);
    const model = modelSegment(seg);
    const detail = model
      ? `model: frames ${model.start_frame}–${model.end_frame - 1}; margin adds ${Math.max(0, model.start_frame - seg.start_frame)} before, ${Math.max(0, seg.end_frame - model.end_frame)} after`
      : "added or moved in this review";
    const item = el("li", {}, el("div", { className: "seg-head" }, pick, remove), el("div", { className: "small", textContent: detail }));
    if (i === rv.selected) item.setAttribute("aria-current", "true");
    list.append(item);
  });
  renderEdges();
}

// The selected segment's edges, large: frames around the padded edge (◀ ▶ look further
// outside), and the pair where the model itself put the edge.
const edgeShift = { start: 0, end: 0, segment: null };
const EDGE_WINDOW = 4;

function shiftEdge(edge, step) {
  edgeShift[edge] += step * EDGE_WINDOW;
  renderEdges();
}

function edgeThumb(frame, seg, model, marks) {
  const hidden = frame >= seg.start_frame && frame < seg.end_frame;
  const fig = el("figure", { className: `edge-frame${hidden ? " hidden" : ""}${marks.model ? " model" : ""}` });
  if (frame < 0 || frame >= rv.count) {
    fig.append(el("div", { className: "none", textContent: frame < 0 ? "start of video" : "end of video" }));
    return fig;
  }
  const img = thumb(frame, hidden, 320);
  img.addEventListener("click", () => seek(frame));
  fig.append(img, el("figcaption", { textContent: `${frame} · ${fmtTime(frameTime(frame))} · ${hidden ? "hidden" : "shown"}${marks.model ? " · model edge" : ""}` }));
  return fig;
}

function renderEdges() {
  const panel = $("#edges");
  const seg = rv.segments[rv.selected];
  panel.hidden = !seg;
  if (!seg) return;
  if (edgeShift.segment !== seg) Object.assign(edgeShift, { start: 0, end: 0, segment: seg });
  const model = modelSegment(seg);
  $("#edges-title").textContent = `Edges of segment ${rv.selected + 1} (frames ${seg.start_frame}–${seg.end_frame - 1})`;
  for (const edge of ["start", "end"]) {
    const strip = $(`#edge-${edge}`);
    strip.replaceChildren();
    const boundary = edge === "start" ? seg.start_frame : seg.end_frame;
    const first = boundary - EDGE_WINDOW / 2 + edgeShift[edge];
    for (let f = first; f < first + EDGE_WINDOW; f += 1) {
      if (f === boundary) strip.append(el("span", { className: "cut", title: "the export's edge (with margin)", textContent: "│" }));
      strip.append(edgeThumb(f, seg, model, {}));
    }
    const modelEdge = model ? (edge === "start" ? model.start_frame : model.end_frame) : null;
    if (modelEdge !== null && modelEdge !== boundary) {
      strip.append(el("span", { className: "gap", textContent: "… model:" }));
      for (const f of [modelEdge - 1, modelEdge]) {
        if (f === modelEdge) strip.append(el("span", { className: "cut model", title: "where the model put the edge", textContent: "┊" }));
        strip.append(edgeThumb(f, seg, model, { model: f === (edge === "start" ? modelEdge : modelEdge - 1) }));
      }
    }
  }
}

function removeSelected() {
  if (rv.selected < 0) return;
  rv.segments.splice(rv.selected, 1);
  rv.selected = Math.min(rv.selected, rv.segments.length - 1);
  changed();
}

function addAtPlayhead() {
  const fps = rv.data.video.fps || 25;
  const seg = { start_frame: rv.frame, end_frame: Math.min(rv.count, rv.frame + Math.max(1, Math.round(fps))) };
  rv.segments.push(seg);
  rv.selected = rv.segments.length - 1;
  changed();
}

function setEdge(which) {
  const seg = rv.segments[rv.selected];
  if (!seg) { notify("Select a segment first (J / K or click it)", true); return; }
  if (which === "start" && rv.frame < seg.end_frame) seg.start_frame = rv.frame;
  else if (which === "end" && rv.frame + 1 > seg.start_frame) seg.end_frame = rv.frame + 1;
  else { notify("The playhead is on the wrong side of the segment", true); return; }
  changed();
}

function jumpSegment(step) {
  if (!rv.segments.length) return;
  let index;
  if (step > 0) index = rv.segments.findIndex((s) => s.start_frame > rv.frame);
  else index = rv.segments.map((s) => s.start_frame < rv.frame).lastIndexOf(true);
  if (index < 0) index = step > 0 ? rv.segments.length - 1 : 0;
  select(index);
}

async function saveReview() {
  try {
    const saved = await api("PUT", `/api/reviews/${rv.data.id}/segments`, { segments: rv.segments });
    rv.data.segments = saved.segments;
    rv.segments = saved.segments.map((s) => ({ start_frame: s.start_frame, end_frame: s.end_frame }));
    rv.selected = Math.min(rv.selected, rv.segments.length - 1);
    setDirty(false);
    renderSegments();
    drawTimeline();
    notify("Saved: these labels are marked as reviewed");
    return true;
  } catch (err) { fail(err); return false; }
}

const HIDDEN_BY = { blur: "blurred", pixelate: "pixelated", black: "blacked out", cut: "cut out" };

async function exportReview(replace = false) {
  const n = rv.segments.length;
  const settings = rv.data.settings;
  const earlier = (rv.data.earlier_export || []).map((f) => f.split("/").pop()).join(", ");
  const message = replace
    ? `Replace the earlier export (${earlier}) with this review: ${n} out-of-body segment(s), ${HIDDEN_BY[settings.action]}? The earlier files are deleted first.`
    : `Export with ${n} out-of-body segment(s), ${HIDDEN_BY[settings.action]}? The file goes to ${settings.output}; the mapping log is ${settings.mapping_log}.`;
  if (!confirm(message)) return;
  if (rv.dirty && !(await saveReview())) return;
  try {
    await api("POST", `/api/reviews/${rv.data.id}/export`, { replace });
    notify(`Export queued: it is verified frame by frame when written. Mapping log: ${settings.mapping_log}`);
    showPage("queue");
  } catch (err) { fail(err); }
}

async function importLabels(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const got = await api("POST", `/api/reviews/${rv.data.id}/import`, form);
    rv.segments = got.segments.map((s) => ({ start_frame: s.start_frame, end_frame: s.end_frame }));
    rv.selected = rv.segments.length ? 0 : -1;
    changed();
    notify(`Imported ${got.segments.length} segment(s) (${got.frames_changed} frames differ): review, then save`);
  } catch (err) { fail(err); }
}

// Timeline: probability curve, threshold, segments, playhead; edges can be dragged.
const EDGE_GRAB_PX = 7;

function timelineX(seconds, width) { return (seconds / rv.data.video.duration_s) * width; }

const AXIS_PX = 18; // the time axis under the plot
const TICKS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

function drawTimeline() {
  const canvas = $("#timeline");
  if (!rv.data || !rv.data.frame_times || canvas.offsetParent === null) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, full = canvas.clientHeight;
  const height = full - AXIS_PX; // the plot; the axis is below it
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(full * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const yOf = (p) => height - p * (height - 8) - 4;
  ctx.clearRect(0, 0, width, full);
  rv.segments.forEach((seg, i) => {
    const x0 = timelineX(frameTime(seg.start_frame), width), x1 = timelineX(frameTime(seg.end_frame), width);
    ctx.fillStyle = color("--oob");
    ctx.fillRect(x0, 0, Math.max(1, x1 - x0), height);
    ctx.fillStyle = color("--oob-edge");
    ctx.fillRect(x0 - 1, 0, 2, height);
    ctx.fillRect(x1 - 1, 0, 2, height);
    if (i === rv.selected) { // the selected segment: a band above and below
      ctx.fillStyle = color("--focus");
      ctx.fillRect(x0, 0, Math.max(1, x1 - x0), 4);
      ctx.fillRect(x0, height - 4, Math.max(1, x1 - x0), 4);
    }
  });
  // What the model found before the safety margin: dotted outlines.
  ctx.strokeStyle = color("--fg");
  ctx.lineWidth = 1;
  ctx.setLineDash([2, 3]);
  for (const m of rv.data.model_segments || []) {
    const x0 = timelineX(frameTime(m.start_frame), width), x1 = timelineX(frameTime(m.end_frame), width);
    ctx.strokeRect(x0 + 0.5, 8.5, Math.max(1, x1 - x0 - 1), height - 17);
  }
  ctx.setLineDash([]);
  if (rv.data.threshold) {
    const y = yOf(rv.data.threshold);
    ctx.strokeStyle = color("--muted");
    ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
    ctx.setLineDash([]);
    const label = `threshold ${Number(rv.data.threshold).toFixed(2)}`;
    ctx.font = "11px system-ui, sans-serif";
    const w = ctx.measureText(label).width;
    ctx.fillStyle = color("--bg");
    ctx.fillRect(width - w - 8, y - 14, w + 6, 13);
    ctx.fillStyle = color("--muted");
    ctx.fillText(label, width - w - 5, y - 4);
  }
  const curve = rv.data.curve;
  ctx.strokeStyle = color("--curve");
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  curve.time_s.forEach((t, i) => {
    const x = timelineX(t, width), y = yOf(curve.p_out[i]);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
  // Time axis: about one labelled tick every 90 px.
  const duration = rv.data.video.duration_s;
  const step = TICKS_S.find((t) => (t / duration) * width >= 90) || TICKS_S[TICKS_S.length - 1];
  ctx.fillStyle = color("--muted");
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillRect(0, height, width, 1);
  for (let t = 0; t <= duration + 1e-9; t += step) {
    const x = timelineX(t, width);
    ctx.fillRect(Math.min(x, width - 1), height, 1, 5);
    const text = fmtClock(t);
    const w = ctx.measureText(text).width;
    ctx.fillText(text, Math.max(0, Math.min(x - w / 2, width - w)), full - 3);
  }
  const px = timelineX(frameTime(rv.frame), width);
  ctx.fillStyle = color("--fg");
  ctx.fillRect(px - 1, 0, 2, height);
}

const fmtClock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

function edgeUnder(x, width) {
  for (const [i, seg] of rv.segments.entries()) {
    if (Math.abs(timelineX(frameTime(seg.start_frame), width) - x) <= EDGE_GRAB_PX) return { index: i, edge: "start" };
    if (Math.abs(timelineX(frameTime(seg.end_frame), width) - x) <= EDGE_GRAB_PX) return { index: i, edge: "end" };
  }
  return null;
}

function onTimelineDown(event) {
  const canvas = event.currentTarget, rect = canvas.getBoundingClientRect();
  const x = event.clientX - rect.left;
  const grab = edgeUnder(x, rect.width);
  canvas.setPointerCapture(event.pointerId);
  canvas.focus();
  if (grab) {
    rv.drag = grab;
    rv.selected = grab.index;
    renderSegments();
    return;
  }
  const frame = frameAt((x / rect.width) * rv.data.video.duration_s);
  const inside = rv.segments.findIndex((s) => frame >= s.start_frame && frame < s.end_frame);
  if (inside >= 0 && inside !== rv.selected) { rv.selected = inside; renderSegments(); }
  rv.drag = { seek: true };
  seek(frame);
}

function onTimelineMove(event) {
  const canvas = event.currentTarget, rect = canvas.getBoundingClientRect();
  const x = Math.max(0, Math.min(rect.width, event.clientX - rect.left));
  if (!rv.drag) {
    canvas.style.cursor = edgeUnder(x, rect.width) ? "ew-resize" : "crosshair";
    return;
  }
  const seconds = (x / rect.width) * rv.data.video.duration_s;
  if (rv.drag.seek) { seek(frameAt(seconds)); return; }
  const seg = rv.segments[rv.drag.index];
  // An edge lies between frames: the nearest boundary to the pointer.
  let boundary = frameAt(seconds);
  const next = frameTime(boundary + 1);
  if (seconds - frameTime(boundary) > (next - frameTime(boundary)) / 2) boundary += 1;
  if (rv.drag.edge === "start") seg.start_frame = Math.min(boundary, seg.end_frame - 1);
  else seg.end_frame = Math.max(Math.min(boundary, rv.count), seg.start_frame + 1);
  setDirty(true);
  seek(rv.drag.edge === "start" ? seg.start_frame : seg.end_frame - 1);
}

function onTimelineUp() {
  if (rv.drag && !rv.drag.seek) changed();
  rv.drag = null;
}

function onReviewKey(event) {
  if (state.page !== "review" || !rv.data || !rv.data.frame_times) return;
  const target = event.target;
  if (target.matches("input, select, textarea") || (target.matches("button") && event.key === " ")) return;
  const fps = Math.max(1, Math.round(rv.data.video.fps || 25));
  const keys = {
    ArrowLeft: () => seek(rv.frame - (event.shiftKey ? fps : 1)),
    ArrowRight: () => seek(rv.frame + (event.shiftKey ? fps : 1)),
    j: () => jumpSegment(-1), k: () => jumpSegment(1),
    "[": () => setEdge("start"), "]": () => setEdge("end"),
    a: addAtPlayhead, Delete: removeSelected, Backspace: removeSelected,
    s: saveReview, " ": togglePlay,
  };
  const action = keys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
  if (!action || event.altKey || event.metaKey || (event.ctrlKey && event.key.toLowerCase() !== "s")) return;
  event.preventDefault();
  action();
}

function togglePlay() {
  const video = $("#video");
  if (!rv.data.playable) return;
  if (video.paused) video.play().catch(fail); else video.pause();
}

function initReview() {
  const video = $("#video");
  const follow = () => {
    if (!rv.data || !rv.data.frame_times) return;
    rv.frame = frameAt(video.currentTime);
    updateClock();
    drawTimeline();
    if (!video.paused) requestAnimationFrame(follow);
  };
  video.addEventListener("play", () => { $("#play").textContent = "❚❚"; requestAnimationFrame(follow); });
  video.addEventListener("pause", () => { $("#play").textContent = "▶"; follow(); });
  video.addEventListener("error", () => {
    if (rv.data && rv.data.playable && Date.now() - rv.videoUrlAt > 5000) { renewVideoUrl(); return; }
    $("#unplayable").hidden = false;
    $("#unplayable").textContent = "The video did not load in the player; the frames below are decoded on the server.";
  });
  $("#play").addEventListener("click", togglePlay);
  $("#prev-seg").addEventListener("click", () => jumpSegment(-1));
  $("#next-seg").addEventListener("click", () => jumpSegment(1));
  $("#save").addEventListener("click", saveReview);
  $("#export").addEventListener("click", () => exportReview(false));
  $("#replace").addEventListener("click", () => exportReview(true));
  $$("#edges .shift").forEach((b) => b.addEventListener("click", () => shiftEdge(b.dataset.edge, Number(b.dataset.step))));
  $("#import").addEventListener("change", importLabels);
  const canvas = $("#timeline");
  canvas.addEventListener("pointerdown", onTimelineDown);
  canvas.addEventListener("pointermove", onTimelineMove);
  canvas.addEventListener("pointerup", onTimelineUp);
  canvas.addEventListener("pointercancel", onTimelineUp);
  document.addEventListener("keydown", onReviewKey);
  window.addEventListener("resize", drawTimeline);
  window.addEventListener("beforeunload", (event) => { if (rv.dirty) event.preventDefault(); });
}

// ---------------------------------------------------------------------------------------
// Live page

async function refreshLive() {
  let status;
  try { status = await api("GET", "/api/live/status"); } catch (err) { return; }
  const running = status.running;
  const badge = $("#live-state");
  badge.textContent = status.state;
  badge.className = `badge ${status.state}`;
  $("#live-fps").textContent = running ? `${Number(status.fps).toFixed(1)} fps` : "";
  $("#live-latency").textContent = running ? `+${Number(status.latency_ms).toFixed(0)} ms` : "";
  $("#live-rec").hidden = !status.recording;
  $("#live-start").disabled = running;
  $("#live-stop").disabled = !running;
  $("#rec-start").disabled = !running || Boolean(status.recording);
  $("#rec-stop").disabled = !status.recording;
  const preview = $("#live-preview");
  preview.hidden = !running;
  $("#live-empty").hidden = running;
  if (running && !preview.src.includes("/api/live/preview.mjpg")) preview.src = status.preview_url;
  if (!running && preview.src) preview.removeAttribute("src");
  const last = status.last_recording;
  let lastText = "";
  if (last && last.path) lastText = `Last recording: ${last.path} (${last.frames} frames)`;
  else if (last && last.errors && last.errors.length) lastText = `The last recording could not be saved: ${last.errors[last.errors.length - 1]}`;
  $("#rec-last").textContent = lastText;
  if (status.error) $("#live-empty").textContent = `The live session stopped: ${status.error}`;
}

async function initLive() {
  const form = $("#live-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    try {
      await api("POST", "/api/live/start", { source: f.source.value.trim(), action: f.action.value, loop: f.loop.checked });
      refreshLive();
    } catch (err) { fail(err); }
  });
  $("#live-stop").addEventListener("click", async () => { try { await api("POST", "/api/live/stop"); refreshLive(); } catch (err) { fail(err); } });
  $("#rec-start").addEventListener("click", async () => {
    try { await api("POST", "/api/live/record/start", { path: form.elements.record.value.trim() }); refreshLive(); } catch (err) { fail(err); }
  });
  $("#rec-stop").addEventListener("click", async () => { try { await api("POST", "/api/live/record/stop"); refreshLive(); } catch (err) { fail(err); } });
  try {
    const found = await api("GET", "/api/live/sources");
    $("#cameras").replaceChildren(...found.cameras.map((c) => el("option", { value: c })));
  } catch (err) { /* signed out: handled by api() */ }
  form.elements.record.value = `${state.session.roots[0]}/live-recording.mp4`;
}

// ---------------------------------------------------------------------------------------
// Start

async function main() {
  initTheme();
  await redeemLaunch();
  let session;
  try { session = await api("GET", "/api/session"); } catch (err) { return; }
  state.session = session;
  $$(".tab").forEach((tab) => tab.addEventListener("click", () => showPage(tab.dataset.page)));
  fillDefaults(session.defaults);
  const form = $("#settings");
  form.addEventListener("submit", startWork);
  form.addEventListener("change", updateStartLabel);
  $("#choose-folder").addEventListener("click", () => { if (work.folder) toggleChosen(work.folder, "folder", true); });
  $("#clear-chosen").addEventListener("click", () => { work.chosen.clear(); renderChosen(); });
  $("#clear-jobs").addEventListener("click", clearJobs);
  initReview();
  initLive();
  browse(session.roots.length === 1 ? session.roots[0] : null);
  setInterval(() => { loadJobs(); if (state.page === "work") loadReviews(); }, 1000);
  setInterval(() => { if (state.page === "live") refreshLive(); }, 1000);
  showFromHash(true);
  window.addEventListener("hashchange", () => showFromHash(false));
}

// #work, #queue, #review/7, #live: links and the back button lead to a page.
function showFromHash(always) {
  const [page, id] = location.hash.slice(1).split("/");
  if (id && page === "report") state.reportId = Number(id);
  else if (id) state.reviewId = Number(id);
  const known = ["work", "queue", "review", "live", "report"].includes(page) ? page : "work";
  if (always || known !== state.page || page === "review") showPage(known);
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const got = await api("POST", "/api/login", { password: $("#password").value });
    localStorage.setItem(TOKEN_KEY, got.token);
    location.reload();
  } catch (err) { fail(err); }
});

main();
