// Reply playback on one clock. Each reply (a turn) has a reply clock: 0 is its first audio
// sample. Audio chunks are scheduled at replyStart + start_ms; viseme frames and gestures are
// read at the same clock, so the mouth moves with what is heard. `interrupt()` stops every
// source and clears the queues at once, and late frames of a cut reply are dropped.

const LEAD_S = 0.08; // scheduling head-room before the first chunk
const LATE_S = 0.02; // a chunk due sooner than this moves the reply clock instead

export class Player {
  /** @param {AudioContext} context */
  constructor(context) {
    this.context = context;
    this.output = context.createGain();
    this.output.connect(context.destination);
    this.dropped = new Set(); // turns that were interrupted
    this.chunksScheduled = 0;
    this.clockShifts = 0;
    this.reset(null);
  }

  reset(turn) {
    this.turn = turn;
    this.replyStart = null; // context time of reply-clock 0
    this.sources = new Set();
    this.spans = []; // [start_ms, end_ms] of scheduled audio
    this.frames = []; // {t_ms, w}
    this.fps = 30;
    this.gestures = [];
    this.done = false; // reply_done seen
  }

  /** Make `turn` the current reply (a new turn stops what is left of the old one). */
  follow(turn) {
    if (this.dropped.has(turn)) return false;
    if (turn !== this.turn) {
      if (this.turn !== null) this.stopSources();
      this.reset(turn);
    }
    return true;
  }

  /** Schedule one chunk of PCM16 LE mono on the reply clock. */
  enqueue(header, data) {
    const turn = header.turn ?? this.turn ?? 0;
    if (!this.follow(turn)) return false;
    const samples = new Int16Array(data.byteLength >> 1);
    new Uint8Array(samples.buffer).set(new Uint8Array(data, 0, samples.length * 2));
    if (samples.length === 0) return false;
    const rate = header.sample_rate_hz;
    const buffer = this.context.createBuffer(1, samples.length, rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;

    const now = this.context.currentTime;
    const startS = header.start_ms / 1000;
    if (this.replyStart === null) this.replyStart = now + LEAD_S - startS;
    let when = this.replyStart + startS;
    if (when < now + LATE_S) {
      // The chunk came late (the reply is slower than real time): the clock waits for it.
      this.replyStart += now + LATE_S - when;
      when = now + LATE_S;
      this.clockShifts += 1;
    }
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    source.onended = () => this.sources.delete(source);
    source.start(when);
    this.sources.add(source);
    const durationMs = header.duration_ms ?? (samples.length * 1000) / rate;
    this.spans.push([header.start_ms, header.start_ms + durationMs]);
    this.chunksScheduled += 1;
    return true;
  }

  /** Viseme frames of the current reply, on its clock. */
  addVisemes(event) {
    if (!this.follow(event.turn ?? this.turn)) return;
    this.fps = event.fps || this.fps;
    const sorted = this.frames.length === 0 ||
      event.frames.length === 0 || event.frames[0].t_ms >= this.frames.at(-1).t_ms;
    this.frames.push(...event.frames);
    if (!sorted) this.frames.sort((a, b) => a.t_ms - b.t_ms);
  }

  addGesture(event) {
    if (!this.follow(event.turn ?? this.turn)) return;
    this.gestures.push(event);
  }

  /** The reply's audio is all sent (its clock still runs until the last chunk has played). */
  finish(turn) {
    if (turn === this.turn) this.done = true;
  }

  /** Stop at once: every source, every queued frame; late frames of `turn` are dropped. */
  interrupt(turn) {
    if (turn !== undefined && turn !== null) this.dropped.add(turn);
    if (this.turn !== null) this.dropped.add(this.turn);
    this.stopSources();
    this.reset(null);
  }

  stopSources() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // never started: nothing to stop
      }
      source.disconnect();
    }
    this.sources.clear();
  }

  /** The current reply-clock time in ms (what is being heard now), or null with no reply. */
  now() {
    if (this.replyStart === null) return null;
    const latency = this.context.outputLatency || this.context.baseLatency || 0;
    return (this.context.currentTime - latency - this.replyStart) * 1000;
  }

  /** Audio of the current reply is sounding now. */
  get playing() {
    const t = this.now();
    return t !== null && this.sources.size > 0 && this.spans.some(([a, b]) => t >= a && t < b);
  }

  /** Everything of the current reply has been sent and played. */
  get finished() {
    const t = this.now();
    const end = this.spans.reduce((m, [, b]) => Math.max(m, b), 0);
    return this.done && (t === null || t >= end) && this.sources.size === 0;
  }

  /** How far the current reply has been heard, for the server's barge-in bookkeeping. */
  played() {
    const t = this.now();
    if (this.turn === null || t === null) return null;
    const end = this.spans.reduce((m, [, b]) => Math.max(m, b), 0);
    return { turn: this.turn, played_ms: Math.round(Math.max(0, Math.min(t, end))) };
  }

  /** Viseme weights at reply time `t` (interpolated between frames), or null: at rest. */
  visemesAt(t) {
    if (t === null || !this.playing || this.frames.length === 0) return null;
    const frames = this.frames;
    let lo = 0;
    let hi = frames.length - 1;
    if (t < frames[0].t_ms || t > frames[hi].t_ms + 1000 / this.fps) return null;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (frames[mid].t_ms <= t) lo = mid;
      else hi = mid - 1;
    }
    const a = frames[lo];
    const b = frames[lo + 1];
    if (!b) return a.w;
    const k = Math.min(1, Math.max(0, (t - a.t_ms) / Math.max(1, b.t_ms - a.t_ms)));
    return a.w.map((w, i) => w + (b.w[i] - w) * k);
  }

  /** Gesture strengths (0..1) at reply time `t`: {blink, nod}. */
  gesturesAt(t) {
    const out = { blink: 0, nod: 0 };
    if (t === null) return out;
    for (const g of this.gestures) {
      if (t < g.start_ms || t > g.end_ms) continue;
      const phase = (t - g.start_ms) / Math.max(1, g.end_ms - g.start_ms);
      const strength = Math.sin(Math.PI * phase) * (g.intensity ?? 1);
      out[g.kind] = Math.max(out[g.kind] ?? 0, strength);
    }
    return out;
  }
}
