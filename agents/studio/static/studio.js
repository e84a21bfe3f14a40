// kantoku studio's page: a brief (or a chat) in, the plan to review as a storyboard and a
// timeline strip, edits sent to the API, approval, live progress, the video and its files out.
// It speaks only the studio's /v1 API, served by the same app.

import { Chat } from "./chat.js";
import { initialLanguage, language, setLanguage, t, term, translate } from "./i18n.js";
import { hue, Strip } from "./timeline.js";

// The plan's choices (planner/planning/plan.py).
const SHOT_SIZES = ["extreme_wide", "wide", "full", "medium", "medium_close_up", "close_up",
  "extreme_close_up"];
const CAMERA_ANGLES = ["eye_level", "high", "low", "birds_eye", "dutch"];
const CAMERA_MOVES = ["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "dolly_in",
  "dolly_out", "zoom_in", "zoom_out", "truck_left", "truck_right"];
const FINISHED = ["done", "failed", "cancelled"];
const EDITED_FIELDS = ["shot_size", "camera_angle", "camera_move", "characters", "description",
  "dialogue", "image_prompt", "seed"];

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};
const seconds = (s) => Number(s).toFixed(2);

const state = {
  job: null,
  music: null,
  source: null,
  shots: new Map(), // shot id -> "queued" | "rendering" | "done"
  stage: "",
  assembled: 0,
  editing: null,
  refresh: null,
};

// -- the API -----------------------------------------------------------------------------------

// Seeds are 64-bit integers, beyond a JS number's exact range: where the browser can, they are
// read as BigInt from their digits and written back as the same digits.
const EXACT = typeof JSON.rawJSON === "function";

function parseJSON(text) {
  return JSON.parse(text, (key, value, context) => (EXACT && Number.isInteger(value)
    && !Number.isSafeInteger(value) && /^\d+$/.test(context?.source ?? "")
    ? BigInt(context.source) : value));
}

function toJSON(value) {
  return JSON.stringify(value, (key, v) => (typeof v === "bigint" ? JSON.rawJSON(String(v)) : v));
}

/** A typed integer, exact when it is big. */
function integer(digits) {
  const n = Number(digits);
  return EXACT && /^\d+$/.test(digits) && !Number.isSafeInteger(n) ? BigInt(digits) : n;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body.detail && typeof body.detail === "string" ? body.detail : toJSON(body));
    Object.assign(this, { status, body });
  }
}

let signingIn = null;

/** fetch, asking for the studio's token (once) when it answers 401. */
async function request(path, init = {}) {
  for (;;) {
    const response = await fetch(path, { credentials: "same-origin", ...init });
    if (response.status !== 401) return response;
    signingIn ??= askToken().finally(() => { signingIn = null; });
    await signingIn;
  }
}

async function api(path, init = {}) {
  if (init.json !== undefined) {
    init = { ...init, body: toJSON(init.json),
      headers: { "content-type": "application/json", ...init.headers } };
  }
  const response = await request(path, init);
  const text = await response.text();
  let body = {};
  try {
    body = text ? parseJSON(text) : {};
  } catch {
    body = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function askToken() {
  const dialog = $("#token-dialog");
  const form = $("#token-form");
  const error = $("[data-error-for=token]", form);
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const response = await fetch("/v1/session", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: form.token.value }),
      });
      if (response.ok) {
        error.textContent = "";
        form.reset();
        dialog.close();
        resolve();
      } else {
        error.textContent = t("token.wrong");
      }
    };
    dialog.oncancel = (e) => e.preventDefault(); // nothing works without it
    dialog.showModal();
  });
}

function showError(name, err, root = document) {
  const target = $(`[data-error-for="${name}"]`, root);
  if (target) target.textContent = err ? err.message || String(err) : "";
}

// -- the brief and the job list -----------------------------------------------------------------

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

function briefOf(form) {
  const song = form.song.files[0];
  const brief = {
    title: form.title.value.trim(),
    logline: form.logline.value.trim(),
    language: form.language.value,
    aspect: form.aspect.value,
    resolution: form.resolution.value,
    rights_policy: { use: form.use.value },
    characters: lines(form.characters.value).map((line) => {
      const [name, ...rest] = line.split(/[:：]/);
      return { name: name.trim(), description: rest.join(":").trim() };
    }),
    locations: lines(form.locations.value),
  };
  if (!song) brief.duration_s = Number(form.duration_s.value);
  else if (form.song_holder.value.trim()) {
    brief.song = { title: song.name.replace(/\.[^.]+$/, ""), holder: form.song_holder.value.trim(),
      license: form.song_license.value.trim() || "proprietary",
      commercial_use: form.song_commercial.checked };
  }
  return brief;
}

async function createJob(e) {
  e.preventDefault();
  const form = e.target;
  const button = $("button[type=submit]", form);
  showError("brief", null, form);
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const brief = briefOf(form);
  const song = form.song.files[0];
  button.disabled = true;
  button.textContent = t("brief.creating");
  try {
    let job;
    if (song) {
      const data = new FormData();
      data.append("brief", new Blob([JSON.stringify(brief)], { type: "application/json" }),
        "brief.json");
      data.append("song", song);
      if (form.lyrics.files[0]) data.append("lyrics", form.lyrics.files[0]);
      data.append("planner", form.planner.value);
      job = await api("/v1/jobs", { method: "POST", body: data });
    } else {
      job = await api("/v1/jobs", { method: "POST", json: { brief, planner: form.planner.value } });
    }
    await listJobs();
    openJob(job.id);
  } catch (err) {
    showError("brief", err, form);
    // The message names the field: mark it (e.g. "brief: duration_s: must be ...").
    const named = err.body?.field ?? (err.message.match(/^(?:brief[.:] ?)?(\w+)/) || [])[1];
    const input = named && form.elements[named];
    if (input instanceof HTMLElement) input.setAttribute("aria-invalid", "true");
  } finally {
    button.disabled = false;
    button.textContent = t("brief.create");
  }
}

async function listJobs() {
  let jobs;
  try {
    jobs = await api("/v1/jobs");
  } catch (err) {
    // The list stays as it was; a studio that cannot be reached says so.
    if (err instanceof TypeError) showError("brief", new Error(t("error.network", { message: err.message })));
    return;
  }
  const list = $("#jobs");
  list.replaceChildren(...jobs.reverse().map((job) => el("li", {},
    el("a", { href: `#/jobs/${job.id}`, className: job.id === state.job?.id ? "current" : "" },
      el("span", { className: "job-name", textContent: job.title }),
      el("span", { className: `status ${job.status}`, textContent: t(`status.${job.status}`) })))));
  if (!jobs.length) list.append(el("li", { className: "muted", textContent: t("jobs.none") }));
}

// -- one job ------------------------------------------------------------------------------------

async function openJob(id) {
  if (location.hash !== `#/jobs/${id}`) history.replaceState(null, "", `#/jobs/${id}`);
  state.source?.close();
  Object.assign(state, { source: null, music: null, editing: null, stage: "", assembled: 0 });
  state.shots = new Map();
  $("#shot-editor").hidden = true;
  $("#strip-note").textContent = "";
  for (const node of document.querySelectorAll("#job .error")) node.textContent = "";
  try {
    state.job = await api(`/v1/jobs/${id}`);
  } catch (err) {
    showError("brief", err);
    return;
  }
  chat?.follow(id);
  render();
  listJobs();
  if (state.job.status === "done") {
    for (const shot of state.job.plan?.shots || []) state.shots.set(shot.id, "done");
  } else {
    follow(id);
  }
  loadMusic();
}

async function loadMusic() {
  const job = state.job;
  if (!job?.plan) return;
  try {
    state.music = await api(`/v1/jobs/${job.id}/timeline`);
  } catch {
    state.music = null; // no timeline for this job: the strip shows the shots alone
  }
  if (job === state.job) renderStrip();
}

/** The job's events, replayed from the start, then live until the job ends. */
function follow(id) {
  const source = new EventSource(`/v1/jobs/${id}/events`);
  state.source = source;
  const on = (name, handle) => source.addEventListener(name, (e) => {
    if (state.source === source) handle(JSON.parse(e.data));
  });
  on("stage", (data) => { state.stage = data.stage; renderProgress(); });
  on("step", (data) => {
    if (data.state === "start" && state.shots.get(data.shot_id) !== "done") {
      state.shots.set(data.shot_id, "rendering");
    }
    renderProgress();
  });
  on("shot_done", (data) => { state.shots.set(data.shot_id, "done"); renderProgress(); });
  on("assemble_progress", (data) => { state.assembled = data.done / data.total; renderProgress(); });
  on("preview", (data) => showPreview(data.shot_id, data.url, data.plan_version));
  for (const name of ["plan_ready", "plan_edited"]) on(name, () => refreshSoon());
  on("status", (data) => {
    if (data.status === "running" && state.job?.status === "awaiting_review") {
      state.shots = new Map(); // approved: every shot renders now
    }
    if (FINISHED.includes(data.status)) {
      source.close();
      if (data.status === "done") {
        for (const shot of state.job?.plan?.shots || []) state.shots.set(shot.id, "done");
      }
    }
    refreshSoon();
  });
}

/** Fetch the job again once a burst of events is over (a replay sends many at once). */
function refreshSoon() {
  clearTimeout(state.refresh);
  state.refresh = setTimeout(async () => {
    const id = state.job?.id;
    if (!id) return;
    let job;
    try {
      job = await api(`/v1/jobs/${id}`);
    } catch {
      return; // the next event tries again
    }
    if (state.job?.id !== id) return;
    const planChanged = job.plan_version !== state.job.plan_version || !state.music;
    state.job = job;
    render();
    listJobs();
    if (planChanged) loadMusic();
  }, 150);
}

function render() {
  const job = state.job;
  $("#empty").hidden = Boolean(job);
  $("#job").hidden = !job;
  if (!job) return;
  const reviewing = job.status === "awaiting_review";
  const planning = ["created", "running"].includes(job.status) && !job.plan;
  $("#job-title").textContent = job.title;
  const status = $("#job-status");
  status.className = `status ${job.status}`;
  status.textContent = t(planning ? "status.planning" : `status.${job.status}`);
  status.dataset.status = job.status;
  const plan = job.plan;
  $("#job-summary").textContent = plan ? t("job.shots", { count: plan.shots.length,
    seconds: seconds(plan.duration_s), width: plan.width_px, height: plan.height_px,
    version: job.plan_version }) : "";
  $("#job-note").textContent = reviewing ? t("job.review") : planning ? t("job.planning") : "";
  $("#approve").hidden = !reviewing;
  $("#cancel").hidden = FINISHED.includes(job.status);
  $("#resume").hidden = !["interrupted", "failed"].includes(job.status);
  const error = $("[data-error-for=job]");
  error.textContent = job.error ? `${job.error.message} (${job.error.reason})` : "";
  renderPolicy(job);
  renderStoryboard();
  renderStrip();
  renderProgress();
  renderResult(job);
  // The editor is filled again only when the plan or the job's status changed (not while
  // a person types and events arrive).
  const key = `${job.id}:${state.editing}:${job.plan_version}:${job.status}`;
  const editor = $("#shot-editor");
  if (state.editing && editor.dataset.key !== key) {
    editor.dataset.key = key;
    fillEditor(state.editing);
  }
}

function renderPolicy(job) {
  const root = $("#policy");
  root.replaceChildren(el("h3", { textContent: t("policy.heading") }));
  root.hidden = !job.policy && !job.verdict;
  if (job.verdict) {
    const badge = (name, ok) => el("span", { className: `badge ${ok ? "ok" : "no"}` },
      `${t(`verdict.${name}`)}: ${t(ok ? "verdict.yes" : "verdict.no")}`);
    root.append(el("p", { className: "verdict" }, badge("publish", job.verdict.publish),
      badge("monetize", job.verdict.monetize)));
    root.append(el("ul", {}, ...job.verdict.reasons.map((r) => el("li", { textContent: r }))));
  } else if (job.policy) {
    const blocked = job.policy.items.filter((item) => !item.ok);
    if (!blocked.length) {
      root.append(el("p", { className: "ok", textContent: t("policy.ok", {
        use: job.policy.use, count: job.policy.items.length }) }));
    } else {
      root.append(el("p", { className: "no", textContent: t("policy.blocked",
        { use: job.policy.use }) }), el("ul", {}, ...blocked.map((item) => el("li", {
        textContent: `${item.kind} ${item.id} (${item.license}): ${item.violations.join("; ")}`,
      }))));
    }
  }
}

// -- the storyboard and the strip ---------------------------------------------------------------

function renderStoryboard() {
  const job = state.job;
  const board = $("#storyboard");
  const plan = job.plan;
  board.closest(".panel").hidden = !plan;
  if (!plan) return;
  const key = `${job.id}:${job.plan_version}:${language()}`;
  if (board.dataset.key !== key) {
    board.dataset.key = key;
    board.style.setProperty("--frame", `${plan.width_px} / ${plan.height_px}`);
    board.replaceChildren(...plan.shots.map((shot) => card(job, shot)));
  }
  for (const li of board.children) {
    const progress = state.shots.get(li.dataset.shot) || "";
    li.dataset.state = progress;
    li.classList.toggle("selected", li.dataset.shot === state.editing);
    $(".state", li).textContent = progress ? t(`shot.state.${progress}`) : "";
  }
}

function card(job, shot) {
  const words = [shot.shot_size, shot.camera_angle, shot.camera_move].map(term).join(" · ");
  // Shown once it loads (a preview not drawn yet is a 404: the coloured card stays).
  const image = el("img", { alt: shot.description, loading: "lazy" });
  image.addEventListener("load", () => image.classList.add("loaded"));
  image.addEventListener("error", () => image.classList.remove("loaded"));
  const frame = el("button", { type: "button", className: "frame",
    title: t("shot.edit", { shot: shot.id }) },
  el("span", { className: "frame-text", textContent: shot.description || shot.image_prompt }),
  image);
  frame.style.setProperty("--hue", hue(shot.location || shot.section || shot.id));
  frame.addEventListener("click", () => selectShot(shot.id));
  const li = el("li", { className: "card" }, frame,
    el("p", { className: "meta" }, el("b", { textContent: shot.id }),
      ` ${seconds(shot.start_s)}–${seconds(shot.end_s)} s `,
      el("span", { className: "state" })),
    el("p", { className: "tags", textContent: words }),
    shot.characters.length ? el("p", { className: "who", textContent: shot.characters.join(", ") })
      : null,
    ...shot.dialogue.map((d) => el("p", { className: "line", textContent: `${d.speaker}: ${d.text}` })),
    shot.lyrics.length ? el("p", { className: "lyric", textContent: `♪ ${shot.lyrics.join(" / ")}` })
      : null);
  li.dataset.shot = shot.id;
  image.src = `/v1/jobs/${job.id}/shots/${shot.id}/preview?v=${job.plan_version}`;
  return li;
}

function showPreview(shotId, url, version) {
  const img = $(`#storyboard li[data-shot="${shotId}"] img`);
  if (!img || version !== state.job?.plan_version) return; // an older plan's picture
  if (!img.src.endsWith(url)) img.src = url;
}

let strip = null;

function renderStrip() {
  const job = state.job;
  $("#timeline").hidden = !job?.plan;
  if (!job?.plan) return;
  const editable = job.status === "awaiting_review";
  strip.set(job.plan, state.music, { selected: state.editing, editable });
  for (const node of document.querySelectorAll("#timeline .muted, #timeline .note")) {
    node.hidden = !editable; // cuts move only while the plan is reviewed
  }
}

async function moveCut(shot, at) {
  const job = state.job;
  const note = $("#strip-note");
  showError("end_s", null);
  note.textContent = "";
  try {
    // The studio moves the cut the shot shares with the next one and snaps it to a beat.
    const answer = await api(`/v1/jobs/${job.id}/shots/${shot.id}`,
      { method: "PATCH", json: { end_s: Number(at.toFixed(3)) } });
    applyPlan(answer);
    const moved = answer.plan.shots.find((s) => s.id === shot.id).end_s;
    note.textContent = answer.snapped
      ? t("timeline.snapped", { shot: shot.id, cut: seconds(answer.snapped.cut_s),
        asked: seconds(answer.snapped.asked_s) })
      : t("timeline.moved", { shot: shot.id, cut: seconds(moved) });
  } catch (err) {
    showError("end_s", err);
  } finally {
    strip.settle();
  }
}

function applyPlan(answer) {
  if (!state.job) return;
  state.job = { ...state.job, plan: answer.plan, plan_version: answer.version };
  render();
}

// -- the shot editor ----------------------------------------------------------------------------

function selectShot(id) {
  state.editing = id;
  const form = $("#shot-editor");
  form.hidden = false;
  $("#editor-note").textContent = "";
  for (const node of form.querySelectorAll(".error")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  form.dataset.key = `${state.job.id}:${id}:${state.job.plan_version}:${state.job.status}`;
  fillEditor(id);
  renderStoryboard();
  renderStrip();
  form.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function dialogueText(lines) {
  return lines.map((d) => `${d.speaker}${d.voice ? ` (${d.voice})` : ""}: ${d.text}`).join("\n");
}

function dialogueOf(text) {
  return lines(text).map((line) => {
    const match = line.match(/^([^:：(]*?)\s*(?:\(([^)]*)\))?\s*[:：]\s*(.*)$/);
    if (!match) return { speaker: "", text: line };
    const [, speaker, voice, words] = match;
    return voice ? { speaker, text: words, voice } : { speaker, text: words };
  });
}

function fillEditor(id) {
  const shot = state.job?.plan?.shots.find((s) => s.id === id);
  const form = $("#shot-editor");
  if (!shot) {
    form.hidden = true;
    return;
  }
  const reviewing = state.job.status === "awaiting_review";
  const done = state.job.status === "done";
  $("#editor-title").textContent = t("shot.edit", { shot: id });
  form.shot_size.value = shot.shot_size;
  form.camera_angle.value = shot.camera_angle;
  form.camera_move.value = shot.camera_move;
  form.characters.value = shot.characters.join(", ");
  form.description.value = shot.description;
  form.dialogue.value = dialogueText(shot.dialogue);
  form.image_prompt.value = shot.image_prompt;
  form.seed.value = String(shot.seed);
  const regenerating = done;
  for (const input of form.querySelectorAll("input, select, textarea")) {
    input.disabled = !reviewing && !(regenerating && ["image_prompt", "seed"].includes(input.name));
  }
  $("button[type=submit]", form).hidden = !reviewing;
  $("#regenerate").hidden = !regenerating;
}

function editedFields(form, shot) {
  const values = {
    shot_size: form.shot_size.value,
    camera_angle: form.camera_angle.value,
    camera_move: form.camera_move.value,
    characters: form.characters.value.split(/[,、]/).map((n) => n.trim()).filter(Boolean),
    description: form.description.value,
    dialogue: dialogueOf(form.dialogue.value),
    image_prompt: form.image_prompt.value,
    seed: form.seed.value === "" ? shot.seed : integer(form.seed.value.trim()),
  };
  const changes = {};
  for (const name of EDITED_FIELDS) {
    const before = name === "dialogue"
      ? dialogueOf(dialogueText(shot.dialogue)) : shot[name];
    if (toJSON(values[name]) !== toJSON(before)) changes[name] = values[name];
  }
  return changes;
}

/** A refusal's problems, each shown beside the field it names. */
function showProblems(form, err) {
  const problems = err.body?.problems || [{ field: null, rule: err.message }];
  for (const problem of problems) {
    const base = (problem.field || "").split(/[.[]/)[0];
    const target = $(`[data-error-for="${base}"]`, form) || $("[data-error-for=shot]", form);
    form.elements[base]?.setAttribute?.("aria-invalid", "true");
    const where = problem.shot && problem.shot !== state.editing ? `${problem.shot}: ` : "";
    target.textContent = `${target.textContent ? `${target.textContent} ` : ""}${where}${problem.rule}`;
  }
}

async function saveShot(e) {
  e.preventDefault();
  const form = e.target;
  const shot = state.job.plan.shots.find((s) => s.id === state.editing);
  for (const node of form.querySelectorAll(".error")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const note = $("#editor-note");
  const changes = editedFields(form, shot);
  if (!Object.keys(changes).length) {
    note.textContent = t("shot.nothing");
    return;
  }
  note.textContent = "";
  try {
    const answer = await api(`/v1/jobs/${state.job.id}/shots/${shot.id}`,
      { method: "PATCH", json: changes });
    applyPlan(answer);
    note.textContent = t("shot.saved", { version: answer.version,
      summary: answer.diff?.summary || "" });
  } catch (err) {
    showProblems(form, err);
  }
}

async function regenerate(jobId, shotId, body = {}) {
  try {
    // The answer is the job's next version (a new id): the page follows it.
    const job = await api(`/v1/jobs/${jobId}/shots/${shotId}:regenerate`,
      { method: "POST", json: body });
    await openJob(job.id);
  } catch (err) {
    showError("job", err);
  }
}

// -- progress and the finished video ------------------------------------------------------------

function renderProgress() {
  const job = state.job;
  const section = $("#progress");
  const rendering = job?.plan && ["running", "done"].includes(job.status);
  section.hidden = !rendering;
  if (!rendering) return;
  const total = job.plan.shots.length;
  const done = job.plan.shots.filter((s) => state.shots.get(s.id) === "done").length;
  const bar = $("#progress-bar");
  // Shots are most of the work; assembling the video and signing it the rest.
  bar.value = job.status === "done" ? 1 : 0.9 * (done / total) + 0.1 * state.assembled;
  const parts = [t("progress.shots", { done, total })];
  if (state.stage && job.status !== "done") parts.push(t("progress.stage", { stage: state.stage }));
  $("#progress-text").textContent = parts.join(" · ");
  renderStoryboard();
}

function renderResult(job) {
  const section = $("#result");
  const done = job.status === "done";
  section.hidden = !done;
  const video = $("#video");
  if (!done) {
    video.removeAttribute("src");
    return;
  }
  const url = (name) => `/v1/jobs/${job.id}/files/${encodeURIComponent(name)}`;
  const src = `${url("video.mp4")}?v=${job.events}`;
  if (video.getAttribute("src") !== src) video.src = src; // a new version after a re-render
  const size = (bytes) => (bytes > 1e6 ? `${(bytes / 1e6).toFixed(1)} MB`
    : `${Math.max(1, Math.round(bytes / 1e3))} kB`);
  $("#downloads").replaceChildren(...job.outputs.map((file) => el("li", {},
    el("a", { href: url(file.name), download: file.name, textContent: file.name }),
    el("small", { textContent: ` ${size(file.bytes)}` }))));
}

// -- start --------------------------------------------------------------------------------------

let chat = null;

function fillChoices(select, values) {
  const chosen = select.value;
  select.replaceChildren(...values.map((v) => el("option", { value: v, textContent: term(v) })));
  if (chosen) select.value = chosen;
}

function fillEditorChoices() {
  const editor = $("#shot-editor");
  fillChoices(editor.shot_size, SHOT_SIZES);
  fillChoices(editor.camera_angle, CAMERA_ANGLES);
  fillChoices(editor.camera_move, CAMERA_MOVES);
}

function relabel() {
  translate();
  fillEditorChoices();
  chat?.relabel();
  $("#lang").textContent = t("lang.switch");
  if (state.job) {
    $("#storyboard").dataset.key = "";
    $("#shot-editor").dataset.key = "";
    render();
  }
  listJobs();
}

async function start() {
  setLanguage(initialLanguage());
  translate();
  const brief = $("#brief");
  brief.language.value = language();
  brief.addEventListener("submit", createJob);
  brief.song.addEventListener("change", () => {
    const song = Boolean(brief.song.files.length);
    $("#song-rights").hidden = !song;
    brief.duration_s.disabled = song;
  });
  $("#lang").addEventListener("click", () => {
    setLanguage(language() === "ja" ? "en" : "ja");
    relabel();
  });
  const editor = $("#shot-editor");
  fillEditorChoices();
  editor.addEventListener("submit", saveShot);
  $("#editor-close").addEventListener("click", () => {
    state.editing = null;
    editor.hidden = true;
    renderStoryboard();
    renderStrip();
  });
  $("#regenerate").addEventListener("click", () => {
    const changes = editedFields(editor, state.job.plan.shots.find((s) => s.id === state.editing));
    regenerate(state.job.id, state.editing, changes);
  });
  strip = new Strip($("#strip"), { onMoveCut: moveCut, onSelect: (shot) => selectShot(shot.id) });
  const act = (name, path) => $(`#${name}`).addEventListener("click", async () => {
    showError("job", null);
    try {
      state.job = await api(`/v1/jobs/${state.job.id}${path}`, { method: "POST" });
      render();
      if (name === "resume") openJob(state.job.id);
    } catch (err) {
      showError("job", err);
    }
  });
  act("approve", ":approve");
  act("cancel", ":cancel");
  act("resume", ":resume");
  window.addEventListener("hashchange", () => {
    const id = location.hash.match(/^#\/jobs\/([\w-]+)$/)?.[1];
    if (id && id !== state.job?.id) openJob(id);
  });

  chat = new Chat($("#chat"), {
    request, jobId: () => state.job?.id ?? null,
    changed: (change) => {
      if (change.job_id && change.job_id !== state.job?.id) openJob(change.job_id);
      else refreshSoon();
      listJobs();
    },
    propose: (p) => (p.action === "approve"
      ? api(`/v1/jobs/${p.job_id}:approve`, { method: "POST" }).then(() => openJob(p.job_id))
      : regenerate(p.job_id, p.shot_id)),
  });
  await listJobs();
  // Jobs started elsewhere (another tab, the API) show up while the page is in view.
  setInterval(() => { if (!document.hidden) listJobs(); }, 10_000);
  const id = location.hash.match(/^#\/jobs\/([\w-]+)$/)?.[1];
  if (id) openJob(id);
  document.body.dataset.ready = "true";
}

start();
