// The page's words in English and Japanese. `t(key, values)` fills {name} placeholders;
// `translate(root)` sets every [data-i18n] element's text and [data-i18n-placeholder] hint.

const STRINGS = {
  en: {
    "app.tagline": "talk with a character",
    "lang.switch": "日本語",
    "persona.label": "Character",
    "status.connecting": "connecting…",
    "status.listening": "listening",
    "status.hearing": "hearing you",
    "status.thinking": "thinking",
    "status.talking": "talking",
    "status.interrupted": "interrupted",
    "status.closed": "disconnected",
    "mic.start": "Talk with the mic",
    "mic.mute": "Mute",
    "mic.unmute": "Unmute",
    "mic.muted": "mic muted",
    "mic.on": "mic on",
    "mic.denied": "The microphone is not available ({reason}); type instead.",
    "mic.insecure": "The microphone needs https or localhost; type instead.",
    "chat.heading": "Conversation",
    "chat.placeholder": "Type to talk…",
    "chat.send": "Send",
    "chat.you": "You",
    "chat.cut": "(interrupted)",
    "chat.metrics": "first audio {ms} ms after you stopped",
    "models.heading": "Models",
    "models.line": "speech in: {asr} · words: {llm} · voice: {tts} · face: {motion}",
    "models.englishOnly": "{llm}, the small model built into kantoku, answers in English only: speak or type English, or choose an English-speaking character.",
    "greeting.hint": "Press “Talk with the mic” or type below.",
    "error.connection": "The avatar server did not answer; reconnecting…",
    "error.closed": "The conversation ended ({reason}).",
    "restart": "Start again",
    "token.heading": "Access token",
    "token.text": "This avatar needs its access token (KANTOKU_AUTH_TOKEN).",
    "token.label": "Token",
    "token.submit": "Sign in",
    "token.wrong": "That token is not right; try again.",
  },
  ja: {
    "app.tagline": "キャラクターと話す",
    "lang.switch": "English",
    "persona.label": "キャラクター",
    "status.connecting": "接続中…",
    "status.listening": "聞いています",
    "status.hearing": "聞き取り中",
    "status.thinking": "考え中",
    "status.talking": "話しています",
    "status.interrupted": "中断",
    "status.closed": "切断",
    "mic.start": "マイクで話す",
    "mic.mute": "ミュート",
    "mic.unmute": "ミュート解除",
    "mic.muted": "マイク オフ",
    "mic.on": "マイク オン",
    "mic.denied": "マイクが使えません（{reason}）。文字で話しかけてください。",
    "mic.insecure": "マイクには https か localhost が必要です。文字で話しかけてください。",
    "chat.heading": "会話",
    "chat.placeholder": "文字で話しかける…",
    "chat.send": "送信",
    "chat.you": "あなた",
    "chat.cut": "（中断）",
    "chat.metrics": "話し終えてから {ms} ミリ秒で返答",
    "models.heading": "モデル",
    "models.line": "音声認識: {asr} · 言葉: {llm} · 声: {tts} · 表情: {motion}",
    "models.englishOnly": "{llm}（kantoku に内蔵の小さなモデル）は英語でしか答えません。英語で話しかけるか、英語を話すキャラクターを選んでください。",
    "greeting.hint": "「マイクで話す」を押すか、下に入力してください。",
    "error.connection": "アバターのサーバーが応答しません。再接続しています…",
    "error.closed": "会話が終わりました（{reason}）。",
    "restart": "もう一度始める",
    "token.heading": "アクセストークン",
    "token.text": "このアバターにはアクセストークン（KANTOKU_AUTH_TOKEN）が必要です。",
    "token.label": "トークン",
    "token.submit": "サインイン",
    "token.wrong": "トークンが違います。もう一度入力してください。",
  },
};

export const LANGUAGES = Object.keys(STRINGS);

let current = "en";

/**
 * The language the page starts in: ?lang=, else the one chosen before, else the browser's
 * when the page speaks it, else the persona's.
 */
export function initialLanguage(personaLanguage = "") {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(asked)) return asked;
  const saved = localStorage.getItem("kantoku.avatar.lang");
  if (LANGUAGES.includes(saved)) return saved;
  const browser = (navigator.language || "").toLowerCase().split("-")[0];
  if (LANGUAGES.includes(browser)) return browser;
  const persona = String(personaLanguage).toLowerCase().split("-")[0];
  return LANGUAGES.includes(persona) ? persona : "en";
}

export function setLanguage(lang, remember = true) {
  current = LANGUAGES.includes(lang) ? lang : "en";
  if (remember) localStorage.setItem("kantoku.avatar.lang", current);
  document.documentElement.lang = current;
}

export function language() {
  return current;
}

export function t(key, values = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}
