// The avatar page: a WebSocket conversation (/v1/avatar, protocol 1) with a character. The
// microphone streams 16 kHz PCM16 frames up; replies come down as text, audio, viseme frames
// and gestures on one reply clock, drawn on the canvas while the audio plays.

import { initialLanguage, language, setLanguage, t, translate } from "./i18n.js";
import { MIC_RATE_HZ, Mic } from "./mic.js";
import { Player } from "./player.js";
import { Renderer, mouthShape } from "./renderer.js";

const $ = (selector, root = document) => root.querySelector(selector);
const params = new URLSearchParams(location.search);
const PLAYBACK_EVERY_MS = 250;
const INTERRUPTED_HOLD_MS = 1500; // "interrupted" stays up this long before the next state

const audio = new AudioContext();
const player = new Player(audio);
const renderer = new Renderer($("#character"));
const mic = new Mic(audio, (pcm) => sendBinary(pcm), (level) => { $("#mic-level").value = level; });

const page = {
  status: "connecting",
  statesSeen: [],
  eventsSeen: [],
  persona: null,
  personaId: params.get("persona") || "", // empty: the server's default character
  ready: null,
  visemeNames: [],
  socket: null,
  pendingAudio: null, // the `audio` event whose binary frame comes next
  typed: [], // typed lines waiting for the turn number of their reply
  retryMs: 1000,
  needsToken: false,
  wasPlaying: false,
  holdUntil: 0, // no status but "closed" replaces "interrupted" before this
  heldStatus: null, // the state to show when the hold ends
  stopped: false,
};
const EVENTS_KEPT = 2000; // eventsSeen, for tests: the latest event types

// ---- status line ----------------------------------------------------------------------

function setStatus(state) {
  // The barge-in's own speech_started may come right after `interrupted`: let it be seen.
  if (performance.now() < page.holdUntil && state !== "closed") {
    page.heldStatus = state;
    return;
  }
  showStatus(state);
}

function holdStatus(state, ms) {
  showStatus(state);
  const until = performance.now() + ms;
  page.holdUntil = until;
  page.heldStatus = null;
  setTimeout(() => {
    if (page.holdUntil === until && page.heldStatus) showStatus(page.heldStatus);
  }, ms);
}

function showStatus(state) {
  if (page.status === state) return;
  page.status = state;
  page.statesSeen.push(state);
  const line = $("#status");
  line.dataset.state = state;
  line.textContent = t(`status.${state}`);
}

// ---- the conversation column ------------------------------------------------------------

function entry(side, turn, who) {
  const log = $("#log");
  let li = turn == null ? null : $(`li.${side}[data-turn="${turn}"]`, log);
  if (!li) {
    li = document.createElement("li");
    li.className = side;
    if (turn != null) li.dataset.turn = turn;
    li.innerHTML = '<span class="who"></span><span class="text"></span>';
    $(".who", li).textContent = who;
    log.append(li);
  }
  return li;
}

function scrollLog() {
  const log = $("#log");
  log.scrollTop = log.scrollHeight;
}

function showTranscript(event) {
  const li = entry("you", event.turn, t("chat.you"));
  $(".text", li).textContent = event.text;
  li.classList.toggle("partial", !event.final);
  li.lang = event.language || "";
  scrollLog();
}

function replyEntry(turn) {
  return entry("them", turn, page.persona?.name || "");
}

function appendReply(event) {
  // A typed turn is not echoed as a transcript: its line takes the turn of the reply to it.
  const first = !$(`li.them[data-turn="${event.turn}"]`);
  if (first && page.typed.length && !$(`li.you[data-turn="${event.turn}"]`)) {
    page.typed.shift().li.dataset.turn = event.turn;
  }
  const li = replyEntry(event.turn);
  $(".text", li).textContent += event.delta;
  scrollLog();
}

function finishReply(event) {
  const li = replyEntry(event.turn);
  if (!li.classList.contains("interrupted")) $(".text", li).textContent = event.text;
}

function markInterrupted(event) {
  const li = $(`li.them[data-turn="${event.turn}"]`);
  if (!li) return;
  li.classList.add("interrupted");
  const text = $(".text", li);
  const said = text.textContent;
  const heard = event.heard_text || "";
  text.replaceChildren();
  if (heard && said.startsWith(heard)) {
    const rest = document.createElement("span");
    rest.className = "unheard";
    rest.textContent = said.slice(heard.length);
    text.append(heard, rest);
  } else {
    text.append(said);
  }
  const cut = document.createElement("span");
  cut.className = "cut";
  cut.textContent = t("chat.cut");
  text.append(cut);
}

function showMetrics(event) {
  const ms = event.speech_end_to_first_audio_ms ?? event.text_to_first_audio_ms;
  const li = $(`li.them[data-turn="${event.turn}"]`);
  if (!li || typeof ms !== "number") return;
  const line = $(".metrics", li) || li.appendChild(document.createElement("span"));
  line.className = "metrics";
  line.textContent = t("chat.metrics", { ms: Math.round(ms) });
}

function showModels() {
  const ready = page.ready;
  if (!ready) return;
  const m = ready.models || {};
  $("#models").textContent = t("models.line", {
    asr: m.asr || "–", llm: m.llm || "–", tts: m.tts || "–", motion: m.motion || "–",
  });
  const languages = ready.llm_languages || [];
  const englishOnly = languages.length > 0 && languages.every((l) => l === "en");
  const note = $("#llm-note");
  note.hidden = !englishOnly;
  note.textContent = englishOnly ? t("models.englishOnly", { llm: m.llm || "LLM" }) : "";
}

function showError(message) {
  $("#error").textContent = message || "";
}

// ---- the protocol -----------------------------------------------------------------------

function send(message) {
  if (page.socket?.readyState === WebSocket.OPEN) page.socket.send(JSON.stringify(message));
}

function sendBinary(pcm) {
  if (page.ready && page.socket?.readyState === WebSocket.OPEN) page.socket.send(pcm);
}

function handle(event) {
  page.eventsSeen.push(event.type);
  if (page.eventsSeen.length > EVENTS_KEPT) page.eventsSeen.shift();
  switch (event.type) {
    case "ready":
      page.ready = event;
      page.retryMs = 1000;
      if (event.persona) {
        usePersona(event.persona);
        page.personaId = event.persona.id;
        $("#persona").value = event.persona.id;
      }
      showModels();
      showError("");
      setStatus("listening");
      break;
    case "visemes":
      if (event.names) page.visemeNames = event.names;
      if (event.frames) player.addVisemes(event);
      break;
    case "listening":
      if (!player.playing) setStatus("listening");
      break;
    case "speech_started":
      setStatus("hearing");
      break;
    case "speech_ended":
      setStatus("thinking");
      break;
    case "transcript":
      if (!event.text.trim()) break; // nothing recognised: no turn, `listening` follows
      showTranscript(event);
      if (event.final && !player.playing) setStatus("thinking");
      break;
    case "reply_text":
      appendReply(event);
      break;
    case "audio":
      page.pendingAudio = event;
      break;
    case "gesture":
      player.addGesture(event);
      break;
    case "reply_done":
      player.finish(event.turn);
      finishReply(event);
      break;
    case "interrupted":
      player.interrupt(event.turn);
      markInterrupted(event);
      holdStatus("interrupted", INTERRUPTED_HOLD_MS);
      break;
    case "turn_metrics":
      showMetrics(event);
      break;
    case "error":
      if (event.code === "UNAUTHENTICATED") page.needsToken = true; // the dialog asks
      else showError(`${event.code}: ${event.message}`);
      break;
    case "closed":
      page.stopped = true;
      break;
    default:
      break; // a newer server's event: ignored
  }
}

function onBinary(data) {
  const header = page.pendingAudio;
  page.pendingAudio = null;
  if (!header) return; // audio without its header: nothing says when to play it
  player.enqueue(header, data);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/avatar`);
  socket.binaryType = "arraybuffer";
  page.socket = socket;
  page.ready = null;
  page.stopped = false;
  setStatus("connecting");
  socket.onopen = () => {
    // The character speaks its own language; the page's labels may be in another.
    const start = { type: "start", protocol: 1, sample_rate_hz: MIC_RATE_HZ };
    if (page.personaId) start.persona = page.personaId;
    if (page.persona?.id === page.personaId && page.persona.language) {
      start.language = page.persona.language;
    }
    socket.send(JSON.stringify(start));
  };
  socket.onmessage = ({ data }) => {
    if (typeof data === "string") handle(JSON.parse(data));
    else onBinary(data);
  };
  socket.onclose = (close) => {
    if (page.socket !== socket) return; // replaced on purpose
    page.socket = null;
    player.interrupt();
    setStatus("closed");
    if (page.needsToken || (close.code === 1008 && /UNAUTHENTICATED/.test(close.reason))) {
      page.needsToken = false;
      askForToken().then(connect);
    } else if (page.stopped || close.code === 1008) {
      showError(t("error.closed", { reason: close.reason || close.code }));
    } else {
      showError(t("error.connection"));
      setTimeout(connect, page.retryMs);
      page.retryMs = Math.min(page.retryMs * 2, 15000);
    }
  };
}

function reconnect() {
  page.typed = [];
  page.pendingAudio = null;
  const old = page.socket;
  page.socket = null;
  if (old) {
    if (old.readyState === WebSocket.OPEN) old.send(JSON.stringify({ type: "stop" }));
    old.close();
  }
  player.interrupt();
  $("#log").replaceChildren();
  connect();
}

// ---- persona, token ---------------------------------------------------------------------

function usePersona(persona) {
  page.persona = persona;
  const lang = initialLanguage(persona.language);
  if (lang !== language()) {
    setLanguage(lang, false);
    translate();
    $("#status").textContent = t(`status.${page.status}`);
    showModels();
  }
  renderer.setLook(persona.look || {});
  $("#persona-name").textContent = persona.name || persona.id || "";
  $("#character").setAttribute("aria-label", persona.name || "");
  if (persona.greeting) $("#hint").textContent = persona.greeting;
}

/** The characters the server plays, into the picker; the chosen one (?persona=) drawn. */
async function loadPersonas() {
  const response = await fetch("/v1/personas", { credentials: "same-origin" });
  if (!response.ok) return;
  const personas = await response.json();
  const select = $("#persona");
  select.replaceChildren(...personas.map((p) => {
    const option = document.createElement("option");
    option.value = p.id;
    option.textContent = p.name;
    option.lang = p.language;
    return option;
  }));
  const chosen = personas.find((p) => p.id === page.personaId);
  if (chosen) usePersona(chosen);
  select.value = page.personaId || "";
}

function askForToken() {
  const dialog = $("#token-dialog");
  const form = $("#token-form");
  const error = $("[data-error-for=token]", form);
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const response = await fetch("/v1/session", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: form.token.value }),
      });
      if (response.ok) {
        error.textContent = "";
        dialog.close();
        resolve();
      } else {
        error.textContent = t("token.wrong");
      }
    };
    if (!dialog.open) dialog.showModal();
  });
}

// ---- microphone and typing --------------------------------------------------------------

function unlockAudio() {
  if (audio.state === "suspended") audio.resume();
}

async function startMic() {
  unlockAudio();
  $("#mic-note").textContent = "";
  $("#mic").disabled = true;
  try {
    await mic.start();
    $("#mic").hidden = true;
    $("#mute").hidden = false;
    $("#mic-level").hidden = false;
    relabelMic();
  } catch (error) {
    $("#mic").disabled = false;
    $("#mic-note").textContent = error.insecure ? t("mic.insecure")
      : t("mic.denied", { reason: error.message || error.name });
  }
}

function relabelMic() {
  const mute = $("#mute");
  mute.textContent = t(mic.muted ? "mic.unmute" : "mic.mute");
  mute.setAttribute("aria-pressed", String(mic.muted));
  $("#mic-state").textContent = mic.started ? t(mic.muted ? "mic.muted" : "mic.on") : "";
}

function say(text) {
  unlockAudio();
  const li = entry("you", null, t("chat.you"));
  $(".text", li).textContent = text;
  page.typed.push({ text, li });
  scrollLog();
  send({ type: "text", text });
  if (!player.playing) setStatus("thinking");
}

// ---- the animation loop -----------------------------------------------------------------

function currentMouth() {
  return mouthShape(page.visemeNames, player.visemesAt(player.now()));
}

function frame(ms) {
  const replyMs = player.now();
  const playing = player.playing;
  const mouth = currentMouth();
  const gestures = player.gesturesAt(replyMs);
  if (playing) {
    if (page.status !== "talking" && page.status !== "hearing") setStatus("talking");
  } else if (page.status === "talking" && player.finished) {
    setStatus("listening");
  }
  if (page.wasPlaying && !playing && player.played()) {
    send({ type: "playback", ...player.played() }); // played to its end (or to a gap)
  }
  page.wasPlaying = playing;
  renderer.draw(ms / 1000, { mouth, blink: gestures.blink, nod: gestures.nod,
                            mood: page.status });
  requestAnimationFrame(frame);
}

// How far the reply has been heard, so a barge-in knows what the person heard.
setInterval(() => {
  const played = player.playing ? player.played() : null;
  if (played) send({ type: "playback", ...played });
}, PLAYBACK_EVERY_MS);

// ---- test hooks -------------------------------------------------------------------------

window.kantokuAvatar = {
  get state() { return page.status; },
  get statesSeen() { return page.statesSeen; },
  get eventsSeen() { return page.eventsSeen; },
  get playing() { return player.playing; },
  get chunksScheduled() { return player.chunksScheduled; },
  get sourcesActive() { return player.sources.size; },
  get micFramesSent() { return mic.framesSent; },
  get ready() { return page.ready; },
  get visemeNames() { return page.visemeNames; },
  get audio() { return { state: audio.state, time: audio.currentTime, rate: audio.sampleRate }; },
  mouthOpen: () => currentMouth().open,
  replyTime: () => player.now(),
};

// ---- start ------------------------------------------------------------------------------

async function main() {
  setLanguage(initialLanguage(), false);
  translate();
  setStatus("connecting");
  $("#status").textContent = t("status.connecting");
  requestAnimationFrame(frame);

  $("#lang").addEventListener("click", () => {
    setLanguage(language() === "ja" ? "en" : "ja");
    translate();
    $("#status").textContent = t(`status.${page.status}`);
    relabelMic();
    reconnect();
  });
  $("#mic").addEventListener("click", startMic);
  $("#mute").addEventListener("click", () => {
    mic.setMuted(!mic.muted);
    relabelMic();
  });
  $("#say").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = e.target.text;
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text);
  });
  document.addEventListener("pointerdown", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  $("#persona").addEventListener("change", (e) => {
    page.personaId = e.target.value;
    const url = new URL(location.href);
    url.searchParams.set("persona", page.personaId);
    history.replaceState(null, "", url);
    reconnect();
  });
  try {
    await loadPersonas();
  } catch {
    // the server names the character in `ready`
  }
  connect();
  document.body.dataset.ready = "true";
}

main();
