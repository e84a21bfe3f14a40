// The timeline strip: the plan's shots against the song (waveform, beats, sections, lyrics) on
// a canvas. A cut is dragged with the pointer; a click on a shot selects it.

const MIN_SHOT_S = 0.5; // the plan's shortest shot (planner/planning/plan.py)
const GRAB_PX = { mouse: 8, pen: 8, touch: 18 }; // how near a cut a pointer takes it
// Rows of the strip, in CSS pixels: with the song's timeline, and without one (a ruler).
const MUSIC_ROWS = { sections: [0, 16], wave: [16, 80], lyrics: [80, 98], shots: [98, 132] };
const PLAIN_ROWS = { ruler: [0, 22], shots: [22, 58] };

export function hue(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export class Strip {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{onMoveCut: (shot: object, t: number) => void, onSelect: (shot: object) => void}} hooks
   */
  constructor(canvas, hooks) {
    this.canvas = canvas;
    this.hooks = hooks;
    this.plan = null;
    this.music = null;
    this.rows = PLAIN_ROWS;
    this.selected = null;
    this.editable = false;
    this.drag = null;
    this.press = null;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", () => { this.drag = null; this.draw(); });
    canvas.addEventListener("keydown", (e) => this.key(e));
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  set(plan, music, { selected = this.selected, editable = this.editable } = {}) {
    // A job without a song has a timeline with nothing in it: the strip is a ruler then.
    const heard = music && (music.waveform || music.beats_s.length || music.lyrics.length);
    Object.assign(this, { plan, music: heard ? music : null, selected, editable });
    this.rows = heard ? MUSIC_ROWS : PLAIN_ROWS;
    this.canvas.style.height = `${this.rows.shots[1]}px`;
    this.canvas.dataset.duration = plan ? String(plan.duration_s) : "";
    this.draw();
  }

  x(t) { return (t / this.plan.duration_s) * this.canvas.clientWidth; }
  time(e) { return (e.offsetX / this.canvas.clientWidth) * this.plan.duration_s; }

  cutNear(e) {
    const shots = this.plan.shots;
    const grab = GRAB_PX[e.pointerType] ?? GRAB_PX.mouse;
    for (let i = 0; i < shots.length - 1; i++) {
      if (Math.abs(this.x(shots[i].end_s) - e.offsetX) <= grab) return i;
    }
    return -1;
  }

  shotAt(t) { return this.plan.shots.find((s) => t >= s.start_s && t < s.end_s); }

  down(e) {
    if (!this.plan) return;
    const cut = this.editable ? this.cutNear(e) : -1;
    if (cut >= 0) {
      this.drag = { index: cut, t: this.plan.shots[cut].end_s, moved: false };
      this.canvas.setPointerCapture(e.pointerId);
    } else {
      this.press = this.shotAt(this.time(e));
    }
  }

  move(e) {
    if (!this.plan) return;
    if (!this.drag) {
      const near = this.editable && this.cutNear(e) >= 0;
      this.canvas.style.cursor = near ? "col-resize" : "pointer";
      return;
    }
    const shots = this.plan.shots;
    const { index } = this.drag;
    const low = shots[index].start_s + MIN_SHOT_S;
    const high = shots[index + 1].end_s - MIN_SHOT_S;
    this.drag.t = Math.min(high, Math.max(low, this.time(e)));
    this.drag.moved = true;
    this.draw();
  }

  up(e) {
    if (this.drag) {
      const { index, t, moved } = this.drag;
      this.canvas.releasePointerCapture(e.pointerId);
      if (moved && Math.abs(t - this.plan.shots[index].end_s) > 1e-3) {
        this.hooks.onMoveCut(this.plan.shots[index], t);
      } else {
        this.drag = null;
        this.draw();
      }
      return; // the strip shows the dragged cut until the plan comes back
    }
    const shot = this.plan && this.shotAt(this.time(e));
    if (shot && shot === this.press) this.hooks.onSelect(shot);
    this.press = null;
  }

  /**
   * The keyboard's way to move a cut: ← → move the selected shot's end by a frame (with Shift,
   * to the previous or next beat, else by half a second), Enter keeps it, Escape drops it.
   */
  key(e) {
    const index = this.plan ? this.plan.shots.findIndex((s) => s.id === this.selected) : -1;
    if (!this.editable || index < 0 || index >= this.plan.shots.length - 1) return;
    const shots = this.plan.shots;
    if (e.key === "Enter" && this.drag) {
      e.preventDefault();
      this.hooks.onMoveCut(shots[index], this.drag.t);
    } else if (e.key === "Escape") {
      this.settle();
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      e.preventDefault();
      const sign = e.key === "ArrowLeft" ? -1 : 1;
      const at = this.drag?.index === index ? this.drag.t : shots[index].end_s;
      let t = at + sign / this.plan.fps;
      if (e.shiftKey) {
        const beats = (this.music?.beats_s || []).filter((b) => sign * (b - at) > 1e-3);
        t = beats.length ? beats[sign > 0 ? 0 : beats.length - 1] : at + sign * 0.5;
      }
      const low = shots[index].start_s + MIN_SHOT_S;
      const high = shots[index + 1].end_s - MIN_SHOT_S;
      this.drag = { index, t: Math.min(high, Math.max(low, t)), moved: true };
      this.draw();
    }
  }

  /** Forget a drag (the plan came back, or the move was refused). */
  settle() {
    this.drag = null;
    this.draw();
  }

  draw() {
    const { canvas } = this;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    if (!this.plan || !width) return;
    const css = getComputedStyle(canvas);
    const ink = css.getPropertyValue("--ink").trim() || "#222";
    const faint = css.getPropertyValue("--faint").trim() || "#888";
    g.font = `11px ${css.fontFamily}`;
    g.textBaseline = "middle";
    if (this.music) this.drawMusic(g, faint, ink);
    else this.drawRuler(g, faint);
    this.drawShots(g, ink);
  }

  drawRuler(g, faint) {
    const step = this.plan.duration_s > 60 ? 10 : this.plan.duration_s > 20 ? 5 : 1;
    const bottom = PLAIN_ROWS.ruler[1];
    g.fillStyle = faint;
    for (let s = 0; s <= this.plan.duration_s; s += step) {
      const x = this.x(s);
      g.fillRect(x, bottom - 6, 1, 6);
      if (s % (step * 2) === 0) g.fillText(`${s}s`, x + 3, bottom - 11);
    }
  }

  drawMusic(g, faint, ink) {
    const m = this.music;
    const ROWS = MUSIC_ROWS;
    for (const section of m.sections) {
      const x0 = this.x(section.start_s);
      g.fillStyle = `hsl(${hue(section.name)} 55% 82%)`;
      g.fillRect(x0, ROWS.sections[0], this.x(section.end_s) - x0 - 1, 15);
      g.fillStyle = ink;
      g.fillText(section.name, x0 + 3, 8);
    }
    const wave = m.waveform;
    if (wave && wave.peaks.length) {
      const mid = (ROWS.wave[0] + ROWS.wave[1]) / 2;
      const half = (ROWS.wave[1] - ROWS.wave[0]) / 2 - 2;
      g.fillStyle = "hsl(210 40% 62%)";
      wave.peaks.forEach((peak, i) => {
        const x = this.x(i * wave.seconds_per_peak);
        const w = Math.max(1, this.x(wave.seconds_per_peak) - 0.5);
        g.fillRect(x, mid - peak * half, w, Math.max(1, peak * half * 2));
      });
    }
    const downbeats = new Set(m.downbeats_s.map((t) => t.toFixed(3)));
    for (const beat of m.beats_s) {
      const strong = downbeats.has(beat.toFixed(3));
      g.fillStyle = strong ? "hsl(215 12% 45%)" : faint; // cuts alone are drawn in ink
      g.fillRect(this.x(beat), ROWS.wave[0], strong ? 1.5 : 1, ROWS.lyrics[1] - ROWS.wave[0]);
    }
    g.fillStyle = ink;
    for (const line of m.lyrics) {
      const x0 = this.x(line.start_s);
      g.save();
      g.beginPath();
      g.rect(x0, ROWS.lyrics[0], this.x(line.end_s) - x0, ROWS.lyrics[1] - ROWS.lyrics[0]);
      g.clip();
      g.fillText(line.text, x0 + 2, (ROWS.lyrics[0] + ROWS.lyrics[1]) / 2);
      g.restore();
    }
  }

  drawShots(g, ink) {
    const shots = this.plan.shots;
    const [top, bottom] = this.rows.shots;
    const ends = shots.map((s, i) => (this.drag && this.drag.index === i ? this.drag.t : s.end_s));
    shots.forEach((shot, i) => {
      const start = i === 0 ? 0 : ends[i - 1];
      const x0 = this.x(start);
      const x1 = this.x(ends[i]);
      const chosen = shot.id === this.selected;
      g.fillStyle = `hsl(${hue(shot.location || shot.section || shot.id)} 45% ${chosen ? 62 : 78}%)`;
      g.fillRect(x0, top, x1 - x0, bottom - top);
      g.fillStyle = ink;
      if (x1 - x0 > 30) g.fillText(shot.id, x0 + 4, (top + bottom) / 2);
      if (chosen) {
        g.strokeStyle = ink;
        g.lineWidth = 2;
        g.strokeRect(x0 + 1, top + 1, x1 - x0 - 2, bottom - top - 2);
      }
    });
    for (let i = 0; i < shots.length - 1; i++) {
      const x = this.x(ends[i]);
      const dragged = this.drag && this.drag.index === i;
      g.fillStyle = dragged ? "hsl(5 80% 50%)" : ink;
      g.fillRect(x - 1, 0, 2, bottom);
      if (this.editable) g.fillRect(x - 3, top + 8, 6, bottom - top - 16);
    }
  }
}
