// The page's words in English and Japanese. `t(key, values)` fills {name} placeholders;
// `translate(root)` sets every [data-i18n] element's text, [data-i18n-placeholder] hint and
// [data-i18n-label] aria-label.

const STRINGS = {
  en: {
    "app.tagline": "brief in, video out",
    "lang.switch": "日本語",
    "chat.heading": "Chat",
    "chat.placeholder": "Describe the video, or ask for a change…",
    "chat.send": "Send",
    "chat.you": "You",
    "chat.agent": "kantoku",
    "chat.model.embedded": "Answered by {model}, the small model built into kantoku, on this machine. It chats in English only and cannot change the plan by itself: say “start the job”, “show me the plan” or “field: value”, or use the forms.",
    "chat.model.configured": "Answered by {model}, at the OpenAI-compatible endpoint this studio is set up with.",
    "chat.approve": "Approve the plan",
    "chat.regenerate": "Render {shot} again",
    "brief.heading": "New video",
    "brief.title": "Title",
    "brief.logline": "Logline",
    "brief.duration": "Length (seconds)",
    "brief.durationHint": "Not needed with a song: the song sets the length.",
    "brief.song": "Song",
    "brief.lyrics": "Lyrics (LRC or text)",
    "brief.songHolder": "Song rights holder",
    "brief.songLicense": "Song license",
    "brief.songCommercial": "The song may be used commercially",
    "brief.characters": "Characters",
    "brief.charactersHint": "One a line: Name: description",
    "brief.locations": "Locations",
    "brief.locationsHint": "One a line",
    "brief.aspect": "Aspect",
    "brief.resolution": "Resolution",
    "brief.language": "Language",
    "brief.use": "Use",
    "brief.planner": "Planner",
    "brief.plannerHeuristic": "rules (fast)",
    "brief.plannerLlm": "LLM",
    "brief.create": "Plan it",
    "brief.creating": "Planning…",
    "jobs.heading": "Jobs",
    "jobs.none": "No jobs yet.",
    "empty.text": "Write a brief (or chat) to plan a video. The plan stops for your review.",
    "status.created": "created",
    "status.running": "running",
    "status.planning": "planning",
    "status.awaiting_review": "awaiting review",
    "status.done": "done",
    "status.failed": "failed",
    "status.cancelled": "cancelled",
    "status.interrupted": "interrupted",
    "job.approve": "Approve and render",
    "job.cancel": "Cancel",
    "job.resume": "Resume",
    "job.shots": "{count} shots · {seconds} s · {width}×{height} · plan v{version}",
    "job.review": "Review the plan: drag a cut on the strip, click a shot to edit it, then approve.",
    "job.planning": "Planning the shots…",
    "policy.heading": "Rights",
    "policy.ok": "The rights policy ({use}) clears all {count} models and assets.",
    "policy.blocked": "Blocked by the rights policy ({use}):",
    "verdict.publish": "publish",
    "verdict.monetize": "monetize",
    "verdict.yes": "yes",
    "verdict.no": "no",
    "timeline.heading": "Timeline",
    "timeline.hint": "Drag a cut to move it; click a shot to edit it.",
    "timeline.keys": "Timeline: select a shot, then ← → move its end (Shift: to a beat), Enter keeps it",
    "timeline.moved": "Cut after {shot} moved to {cut} s.",
    "timeline.snapped": "Cut after {shot} snapped to the beat at {cut} s (asked {asked} s).",
    "storyboard.heading": "Storyboard",
    "shot.edit": "Edit {shot}",
    "shot.size": "Shot size",
    "shot.angle": "Angle",
    "shot.move": "Camera move",
    "shot.characters": "Characters",
    "shot.charactersHint": "Names from the brief, separated by commas",
    "shot.dialogue": "Dialogue",
    "shot.dialogueHint": "One a line: Speaker: text",
    "shot.description": "Description",
    "shot.prompt": "Image prompt",
    "shot.seed": "Seed",
    "shot.save": "Save",
    "shot.close": "Close",
    "shot.saved": "Saved: plan v{version}. {summary}",
    "shot.nothing": "Nothing changed.",
    "shot.regenerate": "Render this shot again",
    "shot.state.queued": "queued",
    "shot.state.rendering": "rendering",
    "shot.state.done": "done",
    "progress.heading": "Progress",
    "progress.shots": "{done} of {total} shots rendered",
    "progress.stage": "Stage: {stage}",
    "result.heading": "The video",
    "result.downloads": "Downloads",
    "token.heading": "Access token",
    "token.text": "This studio needs its access token (KANTOKU_AUTH_TOKEN).",
    "token.label": "Token",
    "token.submit": "Sign in",
    "token.wrong": "That token is not right; try again.",
    "error.network": "The studio did not answer: {message}",
  },
  ja: {
    "app.tagline": "ブリーフから映像へ",
    "lang.switch": "English",
    "chat.heading": "チャット",
    "chat.placeholder": "作りたい映像や、変えたいところを書いてください…",
    "chat.send": "送信",
    "chat.you": "あなた",
    "chat.agent": "kantoku",
    "chat.model.embedded": "回答するのは {model}（kantoku に内蔵の小さなモデル、このマシン上で動作）です。会話は英語のみで、計画を自分では変えられません。「ジョブを開始して」「プランを見せて」「項目: 値」と書くか、フォームを使ってください。",
    "chat.model.configured": "回答するのは {model}（このスタジオに設定された OpenAI 互換エンドポイント）です。",
    "chat.approve": "この計画を承認する",
    "chat.regenerate": "{shot} を作り直す",
    "brief.heading": "新しい映像",
    "brief.title": "タイトル",
    "brief.logline": "あらすじ",
    "brief.duration": "長さ（秒）",
    "brief.durationHint": "曲があれば不要です（曲の長さになります）。",
    "brief.song": "曲",
    "brief.lyrics": "歌詞（LRC またはテキスト）",
    "brief.songHolder": "曲の権利者",
    "brief.songLicense": "曲のライセンス",
    "brief.songCommercial": "曲を商用に使ってよい",
    "brief.characters": "登場人物",
    "brief.charactersHint": "1 行に 1 人：名前: 説明",
    "brief.locations": "場所",
    "brief.locationsHint": "1 行に 1 か所",
    "brief.aspect": "縦横比",
    "brief.resolution": "解像度",
    "brief.language": "言語",
    "brief.use": "用途",
    "brief.planner": "プランナー",
    "brief.plannerHeuristic": "ルール（速い）",
    "brief.plannerLlm": "LLM",
    "brief.create": "計画を立てる",
    "brief.creating": "計画中…",
    "jobs.heading": "ジョブ",
    "jobs.none": "まだジョブはありません。",
    "empty.text": "ブリーフを書く（またはチャットする）と映像の計画を立てます。計画は確認のために止まります。",
    "status.created": "作成済み",
    "status.running": "実行中",
    "status.planning": "計画中",
    "status.awaiting_review": "確認待ち",
    "status.done": "完了",
    "status.failed": "失敗",
    "status.cancelled": "取り消し",
    "status.interrupted": "中断",
    "job.approve": "承認して制作する",
    "job.cancel": "取り消す",
    "job.resume": "再開する",
    "job.shots": "{count} ショット · {seconds} 秒 · {width}×{height} · 計画 v{version}",
    "job.review": "計画を確認してください。タイムラインのカットをドラッグで動かし、ショットをクリックして編集し、承認します。",
    "job.planning": "ショットを計画しています…",
    "policy.heading": "権利",
    "policy.ok": "権利ポリシー（{use}）はすべてのモデルと素材（{count} 件）を認めています。",
    "policy.blocked": "権利ポリシー（{use}）が止めているもの：",
    "verdict.publish": "公開",
    "verdict.monetize": "収益化",
    "verdict.yes": "可",
    "verdict.no": "不可",
    "timeline.heading": "タイムライン",
    "timeline.hint": "カットをドラッグで動かし、ショットをクリックして編集します。",
    "timeline.keys": "タイムライン：ショットを選び、← → で終わりを動かし（Shift で拍へ）、Enter で確定",
    "timeline.moved": "{shot} の後のカットを {cut} 秒に動かしました。",
    "timeline.snapped": "{shot} の後のカットを {cut} 秒の拍に合わせました（指定 {asked} 秒）。",
    "storyboard.heading": "絵コンテ",
    "shot.edit": "{shot} を編集",
    "shot.size": "サイズ",
    "shot.angle": "アングル",
    "shot.move": "カメラの動き",
    "shot.characters": "登場人物",
    "shot.charactersHint": "ブリーフの名前をカンマで区切って",
    "shot.dialogue": "セリフ",
    "shot.dialogueHint": "1 行に 1 つ：話者: セリフ",
    "shot.description": "説明",
    "shot.prompt": "画像プロンプト",
    "shot.seed": "シード",
    "shot.save": "保存",
    "shot.close": "閉じる",
    "shot.saved": "保存しました：計画 v{version}。{summary}",
    "shot.nothing": "変更はありません。",
    "shot.regenerate": "このショットを作り直す",
    "shot.state.queued": "待機中",
    "shot.state.rendering": "制作中",
    "shot.state.done": "完了",
    "progress.heading": "進み具合",
    "progress.shots": "{total} ショット中 {done} ショット完了",
    "progress.stage": "段階：{stage}",
    "result.heading": "映像",
    "result.downloads": "ダウンロード",
    "token.heading": "アクセストークン",
    "token.text": "このスタジオにはアクセストークン（KANTOKU_AUTH_TOKEN）が必要です。",
    "token.label": "トークン",
    "token.submit": "サインイン",
    "token.wrong": "トークンが違います。もう一度入力してください。",
    "error.network": "スタジオが応答しません：{message}",
  },
};

export const LANGUAGES = Object.keys(STRINGS);

/** The plan's shot vocabulary as Japanese crews say it (English: the value itself). */
const TERMS_JA = {
  extreme_wide: "超ロング", wide: "ロング", full: "フルショット", medium: "ミディアム",
  medium_close_up: "バストショット", close_up: "アップ", extreme_close_up: "超アップ",
  eye_level: "アイレベル", high: "ハイアングル", low: "ローアングル", birds_eye: "俯瞰",
  dutch: "ダッチアングル", static: "フィックス", pan_left: "パン（左）", pan_right: "パン（右）",
  tilt_up: "ティルトアップ", tilt_down: "ティルトダウン", dolly_in: "ドリーイン",
  dolly_out: "ドリーアウト", zoom_in: "ズームイン", zoom_out: "ズームアウト",
  truck_left: "トラック（左）", truck_right: "トラック（右）",
};

let current = "en";

/** The language the page starts in: the one chosen before, else the browser's. */
export function initialLanguage() {
  const saved = localStorage.getItem("kantoku.lang");
  if (LANGUAGES.includes(saved)) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("ja") ? "ja" : "en";
}

export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : "en";
  localStorage.setItem("kantoku.lang", current);
  document.documentElement.lang = current;
}

export function language() {
  return current;
}

export function t(key, values = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** A plan value (shot size, angle, move) in the page's language. */
export function term(value) {
  return (current === "ja" && TERMS_JA[value]) || value.replaceAll("_", " ");
}

export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}
