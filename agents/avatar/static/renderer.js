// The character, drawn on a canvas in a clean previz/anime style from persona.look: short
// hair with bangs, large eyes, a knit top. The mouth takes its shape from the 15 Oculus
// viseme weights (blended into openness, width and roundness); the eyes blink from `gesture`
// events and on their own; the head nods; the body breathes.

/** Mouth shape of each viseme: [openness, width, roundness], each 0..1. */
export const VISEME_SHAPES = {
  sil: [0, 0.45, 0], PP: [0, 0.4, 0.15], FF: [0.12, 0.55, 0], TH: [0.22, 0.55, 0],
  DD: [0.3, 0.6, 0], kk: [0.35, 0.55, 0.05], CH: [0.3, 0.4, 0.55], SS: [0.14, 0.75, 0],
  nn: [0.2, 0.55, 0], RR: [0.3, 0.4, 0.5], aa: [1, 0.65, 0.1], E: [0.55, 0.85, 0],
  ih: [0.4, 0.75, 0], oh: [0.75, 0.4, 0.8], ou: [0.45, 0.25, 1],
};
export const REST = { open: 0, wide: 0.45, round: 0 };

/** Blend viseme weights (in the order of `names`) into one mouth shape; null is at rest. */
export function mouthShape(names, weights) {
  if (!weights) return { ...REST };
  let total = 0;
  const shape = { open: 0, wide: 0, round: 0 };
  weights.forEach((w, i) => {
    const s = VISEME_SHAPES[names[i]];
    if (!s || !(w > 0)) return;
    total += w;
    shape.open += w * s[0];
    shape.wide += w * s[1];
    shape.round += w * s[2];
  });
  if (total < 1e-6) return { ...REST };
  return { open: shape.open / total, wide: shape.wide / total, round: shape.round / total };
}

// Named colours in the persona's words, in an anime palette (CSS colours work too).
const HAIR = { black: "#25262f", brown: "#6a4331", blonde: "#e6c36f", blond: "#e6c36f",
  red: "#a8372e", pink: "#f19bb8", blue: "#3c5fa8", silver: "#c9ccd6", white: "#eeeef2",
  grey: "#8e929c", gray: "#8e929c", green: "#3f7a5a", purple: "#6e4a9a" };
const CLOTH = { pink: "#f5a9c2", red: "#d9545a", blue: "#7ea6dc", navy: "#34466e",
  white: "#f4f2ee", black: "#33343b", grey: "#a4a8b0", gray: "#a4a8b0", green: "#8cc4a0",
  yellow: "#f4d27a", cream: "#f3e6cc", beige: "#e3d2b4", purple: "#b39ad8", orange: "#f2a66b" };
const EYES = { brown: "#7b4a2c", "dark brown": "#4e3020", black: "#3a3036", blue: "#3d7bd6",
  green: "#3c8d5a", hazel: "#8a6a33", grey: "#6f7d8c", gray: "#6f7d8c", amber: "#c58a2b",
  violet: "#7c5bc4", red: "#b8383f" };
const SKIN = { fair: "#fde6d8", light: "#fbdcc8", pale: "#fdeee6", medium: "#eab894",
  olive: "#d8a777", tan: "#c98e66", brown: "#a86e4a", dark: "#80543a" };

const probe = document.createElement("canvas").getContext("2d");

/** A colour from a persona word ("black", "short black", "#222"), else `fallback`. */
export function colourOf(value, palette, fallback) {
  const text = String(value ?? "").toLowerCase().trim();
  if (!text) return fallback;
  const named = Object.keys(palette).sort((a, b) => b.length - a.length)
    .find((name) => text.includes(name));
  if (named) return palette[named];
  probe.fillStyle = "#010203";
  probe.fillStyle = text;
  return probe.fillStyle === "#010203" ? fallback : probe.fillStyle;
}

function shade(hex, amount) {
  // Lighter (amount > 0) or darker (< 0), for outlines, shadows and highlights.
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return hex;
  const n = parseInt(m[1], 16);
  const channel = (c) => {
    const v = amount >= 0 ? c + (255 - c) * amount : c * (1 + amount);
    return Math.round(Math.max(0, Math.min(255, v))).toString(16).padStart(2, "0");
  };
  return `#${channel(n >> 16)}${channel((n >> 8) & 255)}${channel(n & 255)}`;
}

const W = 400; // design space; the canvas scales it to fit
const H = 460;
const LINE = "#3b2b2e";

export class Renderer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.setLook({});
    this.nextBlinkS = 1.5;
    this.blinkUntilS = 0;
    this.mouth = { ...REST };
    this.eyesOpen = 1;
    this.tilt = 0; // eased toward the mood's head tilt
    this.gaze = { x: 0, y: 0 }; // eased toward the mood's gaze, in design units
  }

  setLook(look) {
    const text = (k) => String(look?.[k] ?? "").toLowerCase();
    this.look = {
      hair: HAIR.black, skin: SKIN.fair, cloth: CLOTH.pink, eyes: EYES.brown,
      long: /long|ponytail|twin/.test(text("hair")),
      outfit: ["knit", "hoodie", "shirt", "jacket", "dress"].find((o) => text("outfit").includes(o))
        || (/sweater|jumper|cardigan/.test(text("outfit")) || !text("outfit") ? "knit" : "dress"),
    };
    this.look.hair = colourOf(look?.hair_colour || look?.hair, HAIR, HAIR.black);
    this.look.skin = colourOf(look?.skin, SKIN, SKIN.fair);
    this.look.cloth = colourOf(look?.outfit_colour || look?.outfit, CLOTH, CLOTH.pink);
    this.look.eyes = colourOf(look?.eye_colour, EYES, EYES.brown);
  }

  /**
   * Draw one frame.
   * @param {number} timeS page time in seconds (idle motion)
   * @param {object} pose {mouth: {open, wide, round}, blink: 0..1, nod: 0..1, mood}: mood
   *   "hearing" tilts the head a little towards the person, "thinking" looks up and away
   */
  draw(timeS, pose = {}) {
    const { canvas, ctx } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const scale = Math.min(width / W, height / H);
    ctx.setTransform(scale, 0, 0, scale, (width - W * scale) / 2, (height - H * scale) / 2);
    ctx.clearRect(-W, -H, 3 * W, 3 * H);

    // Idle blinks every 2-6 s, each 160 ms; a gesture's blink adds to it.
    if (timeS >= this.nextBlinkS) {
      this.blinkUntilS = timeS + 0.16;
      this.nextBlinkS = timeS + 2 + Math.random() * 4;
    }
    const idleBlink = timeS < this.blinkUntilS
      ? Math.sin(Math.PI * (1 - (this.blinkUntilS - timeS) / 0.16)) : 0;
    this.eyesOpen = 1 - Math.min(1, Math.max(idleBlink, pose.blink ?? 0));
    this.mouth = pose.mouth ?? REST;

    const breath = Math.sin((timeS * 2 * Math.PI) / 4.2);
    const nod = pose.nod ?? 0;
    const tilt = pose.mood === "hearing" ? 0.045 : 0;
    const gaze = pose.mood === "thinking" ? { x: 3.5, y: -3.5 } : { x: 0, y: 0 };
    this.tilt += (tilt - this.tilt) * 0.08;
    this.gaze.x += (gaze.x - this.gaze.x) * 0.12;
    this.gaze.y += (gaze.y - this.gaze.y) * 0.12;
    this.background(ctx);
    ctx.save();
    ctx.translate(0, breath * 1.2);
    if (this.look.long) this.longHair(ctx);
    this.body(ctx, breath);
    ctx.restore();

    ctx.save();
    // The head sways a little, breathes with the body, and nods down and forward.
    const sway = Math.sin(timeS * 0.7) * 0.012;
    ctx.translate(200, 330 + breath * 2 + nod * 9);
    ctx.rotate(sway + this.tilt);
    ctx.scale(1, 1 - nod * 0.03);
    ctx.translate(-200, -330);
    this.head(ctx);
    ctx.restore();
  }

  background(ctx) {
    const glow = ctx.createRadialGradient(200, 200, 30, 200, 230, 300);
    glow.addColorStop(0, "#fff7f2");
    glow.addColorStop(1, "#e9edf5");
    ctx.fillStyle = glow;
    ctx.fillRect(-W, -H, 3 * W, 3 * H);
    // A disc in the outfit's colour behind the character.
    ctx.fillStyle = shade(this.look.cloth, 0.55);
    ctx.globalAlpha = 0.45;
    ctx.beginPath();
    ctx.arc(200, 215, 165, 0, Math.PI * 2);
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  longHair(ctx) {
    ctx.fillStyle = shade(this.look.hair, -0.15);
    ctx.beginPath();
    ctx.moveTo(100, 200);
    ctx.bezierCurveTo(80, 300, 85, 380, 110, 430);
    ctx.lineTo(290, 430);
    ctx.bezierCurveTo(315, 380, 320, 300, 300, 200);
    ctx.closePath();
    ctx.fill();
  }

  body(ctx, breath) {
    const { cloth, skin } = this.look;
    // Neck, with the chin's shadow.
    ctx.fillStyle = skin;
    ctx.strokeStyle = LINE;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(178, 290);
    ctx.lineTo(175, 350);
    ctx.lineTo(225, 350);
    ctx.lineTo(222, 290);
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = shade(skin, -0.12);
    ctx.beginPath();
    ctx.moveTo(180, 296);
    ctx.quadraticCurveTo(200, 322, 220, 296);
    ctx.lineTo(220, 290);
    ctx.lineTo(180, 290);
    ctx.fill();

    // Shoulders and chest in the knit; it widens a little on each breath.
    const w = 1 + breath * 0.006;
    ctx.save();
    ctx.translate(200, 460);
    ctx.scale(w, 1);
    ctx.translate(-200, -460);
    const top = ctx.createLinearGradient(0, 330, 0, 460);
    top.addColorStop(0, shade(cloth, 0.08));
    top.addColorStop(1, shade(cloth, -0.1));
    ctx.fillStyle = top;
    ctx.beginPath();
    ctx.moveTo(40, 470);
    ctx.bezierCurveTo(46, 400, 80, 372, 150, 352);
    ctx.quadraticCurveTo(200, 340, 250, 352);
    ctx.bezierCurveTo(320, 372, 354, 400, 360, 470);
    ctx.closePath();
    ctx.fill();
    ctx.lineWidth = 2.5;
    ctx.stroke();
    const outfit = this.look.outfit;
    if (outfit === "knit") this.knit(ctx, cloth);
    else if (outfit === "hoodie") this.hoodie(ctx, cloth);
    else if (outfit === "shirt" || outfit === "jacket") this.collar(ctx, cloth, outfit);
    else this.neckline(ctx, cloth);
    ctx.restore();
  }


  knit(ctx, cloth) {
    // Ribbing: soft vertical lines, a cable down each side, a ribbed band round the neck.
    ctx.save();
    ctx.clip();
    ctx.strokeStyle = shade(cloth, -0.14);
    ctx.lineWidth = 1.4;
    for (let x = 58; x <= 342; x += 11) {
      ctx.beginPath();
      ctx.moveTo(x, 470);
      ctx.quadraticCurveTo(x + (x - 200) * 0.06, 420, x + (x - 200) * 0.16, 350);
      ctx.stroke();
    }
    ctx.strokeStyle = shade(cloth, -0.2);
    ctx.lineWidth = 2;
    for (const cx of [150, 250]) {
      for (let y = 372; y < 470; y += 16) {
        ctx.beginPath();
        ctx.moveTo(cx - 7, y);
        ctx.quadraticCurveTo(cx, y + 9, cx + 7, y);
        ctx.moveTo(cx - 7, y + 8);
        ctx.quadraticCurveTo(cx, y + 17, cx + 7, y + 8);
        ctx.stroke();
      }
    }
    ctx.restore();
    ctx.fillStyle = shade(cloth, -0.06);
    ctx.strokeStyle = LINE;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(160, 350);
    ctx.quadraticCurveTo(200, 378, 240, 350);
    ctx.quadraticCurveTo(236, 338, 226, 336);
    ctx.quadraticCurveTo(200, 356, 174, 336);
    ctx.quadraticCurveTo(164, 338, 160, 350);
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
    ctx.strokeStyle = shade(cloth, -0.22);
    ctx.lineWidth = 1;
    for (let i = 1; i < 12; i++) {
      const x = 164 + i * 6;
      const y = 341 + 0.9 * Math.sin((Math.PI * (x - 160)) / 80) * 16;
      ctx.beginPath();
      ctx.moveTo(x, y - 4);
      ctx.lineTo(x, y + 6);
      ctx.stroke();
    }
  }

  hoodie(ctx, cloth) {
    // The hood lies round the neck; two drawstrings hang from it; a pocket seam below.
    ctx.fillStyle = shade(cloth, -0.12);
    ctx.strokeStyle = LINE;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(132, 356);
    ctx.bezierCurveTo(140, 410, 260, 410, 268, 356);
    ctx.quadraticCurveTo(250, 336, 228, 336);
    ctx.quadraticCurveTo(200, 372, 172, 336);
    ctx.quadraticCurveTo(150, 336, 132, 356);
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
    ctx.strokeStyle = shade(cloth, 0.55);
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    for (const [x0, x1] of [[186, 182], [214, 218]]) {
      ctx.beginPath();
      ctx.moveTo(x0, 384);
      ctx.quadraticCurveTo(x0 + (x1 - x0) * 2, 410, x1, 436);
      ctx.stroke();
    }
    ctx.strokeStyle = shade(cloth, -0.25);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(120, 470);
    ctx.lineTo(140, 446);
    ctx.lineTo(260, 446);
    ctx.lineTo(280, 470);
    ctx.stroke();
  }

  collar(ctx, cloth, outfit) {
    // A shirt's collar points; a jacket adds lapels over a white shirt.
    if (outfit === "jacket") {
      ctx.fillStyle = "#f7f5f0";
      ctx.beginPath();
      ctx.moveTo(172, 346);
      ctx.lineTo(200, 420);
      ctx.lineTo(228, 346);
      ctx.closePath();
      ctx.fill();
      ctx.fillStyle = shade(cloth, -0.15);
      ctx.strokeStyle = LINE;
      ctx.lineWidth = 2;
      for (const side of [-1, 1]) {
        ctx.beginPath();
        ctx.moveTo(200 + side * 30, 344);
        ctx.lineTo(200 + side * 2, 424);
        ctx.lineTo(200 + side * 44, 384);
        ctx.lineTo(200 + side * 36, 370);
        ctx.closePath();
        ctx.fill();
        ctx.stroke();
      }
    }
    ctx.fillStyle = outfit === "jacket" ? "#f7f5f0" : shade(cloth, 0.2);
    ctx.strokeStyle = LINE;
    ctx.lineWidth = 2;
    for (const side of [-1, 1]) {
      ctx.beginPath();
      ctx.moveTo(200 + side * 26, 336);
      ctx.lineTo(200 + side * 2, 372);
      ctx.lineTo(200 + side * 34, 372);
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
  }

  neckline(ctx, cloth) {
    ctx.strokeStyle = shade(cloth, -0.3);
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(164, 350);
    ctx.quadraticCurveTo(200, 384, 236, 350);
    ctx.stroke();
  }

  head(ctx) {
    const { hair, skin } = this.look;
    // Hair behind the head.
    ctx.fillStyle = shade(hair, -0.12);
    ctx.beginPath();
    ctx.moveTo(104, 270);
    ctx.bezierCurveTo(80, 170, 110, 92, 200, 88);
    ctx.bezierCurveTo(290, 92, 320, 170, 296, 270);
    ctx.quadraticCurveTo(200, 300, 104, 270);
    ctx.fill();

    // Ears.
    ctx.fillStyle = skin;
    ctx.strokeStyle = LINE;
    ctx.lineWidth = 2;
    for (const side of [-1, 1]) {
      ctx.beginPath();
      ctx.ellipse(200 + side * 90, 232, 11, 17, side * 0.2, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }

    // Face: round cheeks to a soft chin.
    ctx.fillStyle = skin;
    this.facePath(ctx);
    ctx.fill();
    ctx.lineWidth = 2.5;
    ctx.stroke();
    // The fringe's shadow on the forehead.
    ctx.save();
    this.facePath(ctx);
    ctx.clip();
    ctx.translate(3, 8);
    this.fringePath(ctx);
    ctx.fillStyle = shade(skin, -0.1);
    ctx.fill();
    ctx.restore();

    // Blush.
    for (const side of [-1, 1]) {
      const cx = 200 + side * 56;
      const blush = ctx.createRadialGradient(cx, 262, 2, cx, 262, 22);
      blush.addColorStop(0, "rgba(244, 120, 140, 0.42)");
      blush.addColorStop(1, "rgba(244, 120, 140, 0)");
      ctx.fillStyle = blush;
      ctx.beginPath();
      ctx.ellipse(cx, 262, 24, 13, 0, 0, Math.PI * 2);
      ctx.fill();
    }

    this.eye(ctx, 158, -1);
    this.eye(ctx, 242, 1);

    // Brows, nose.
    ctx.strokeStyle = shade(hair, 0.05);
    ctx.lineCap = "round";
    ctx.lineWidth = 3;
    for (const side of [-1, 1]) {
      ctx.beginPath();
      ctx.moveTo(200 + side * 22, 192);
      ctx.quadraticCurveTo(200 + side * 42, 182, 200 + side * 62, 189);
      ctx.stroke();
    }
    ctx.strokeStyle = shade(skin, -0.3);
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(201, 255);
    ctx.lineTo(198, 262);
    ctx.stroke();

    this.mouthShape(ctx, this.mouth);
    this.fringe(ctx);
  }

  facePath(ctx) {
    ctx.beginPath();
    ctx.moveTo(112, 170);
    ctx.bezierCurveTo(108, 230, 118, 262, 150, 286);
    ctx.quadraticCurveTo(184, 310, 200, 310);
    ctx.quadraticCurveTo(216, 310, 250, 286);
    ctx.bezierCurveTo(282, 262, 292, 230, 288, 170);
    ctx.bezierCurveTo(282, 110, 118, 110, 112, 170);
    ctx.closePath();
  }

  eye(ctx, cx, side) {
    const open = this.eyesOpen;
    const cy = 228;
    const w = 23;
    const h = 25;
    ctx.save();
    if (open < 0.18) {
      // Closed: a soft downward arc with lashes.
      ctx.strokeStyle = LINE;
      ctx.lineWidth = 3;
      ctx.lineCap = "round";
      ctx.beginPath();
      ctx.moveTo(cx - w, cy + 4);
      ctx.quadraticCurveTo(cx, cy + 14, cx + w, cy + 4);
      ctx.stroke();
      ctx.restore();
      return;
    }
    const top = cy - h * open;
    const bottom = cy + h * 0.9 * Math.max(open, 0.4);
    // The white, clipped so the iris stays inside.
    ctx.beginPath();
    ctx.moveTo(cx - w, cy);
    ctx.bezierCurveTo(cx - w, top, cx + w, top, cx + w, cy);
    ctx.bezierCurveTo(cx + w, bottom, cx - w, bottom, cx - w, cy);
    ctx.closePath();
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.save();
    ctx.clip();
    const iris = ctx.createLinearGradient(0, cy - h, 0, cy + h);
    iris.addColorStop(0, shade(this.look.eyes, -0.45));
    iris.addColorStop(0.55, this.look.eyes);
    iris.addColorStop(1, shade(this.look.eyes, 0.45));
    ctx.fillStyle = iris;
    ctx.beginPath();
    const ix = cx + side * 2 + this.gaze.x;
    const iy = cy + this.gaze.y;
    ctx.ellipse(ix, iy + 3, 16, 21, 0, 0, Math.PI * 2);
    ctx.fill();
    ctx.strokeStyle = shade(this.look.eyes, -0.5);
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.fillStyle = shade(this.look.eyes, -0.6);
    ctx.beginPath();
    ctx.ellipse(ix, iy + 4, 7.5, 11, 0, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = "#ffffff";
    ctx.beginPath();
    ctx.arc(ix - 6, iy - 7, 5.5, 0, Math.PI * 2);
    ctx.moveTo(ix + 8.5, iy + 12);
    ctx.arc(ix + 6, iy + 12, 2.5, 0, Math.PI * 2);
    ctx.fill();
    // The upper lid's shadow on the eye.
    ctx.fillStyle = "rgba(60, 40, 50, 0.16)";
    ctx.fillRect(cx - w, top - 2, 2 * w, 7);
    ctx.restore();

    // Upper lash line, heavier at the outer corner, with a flick.
    ctx.strokeStyle = LINE;
    ctx.fillStyle = LINE;
    ctx.lineCap = "round";
    ctx.lineWidth = 4;
    ctx.beginPath();
    ctx.moveTo(cx - side * w * 1.02, cy - 2);
    ctx.bezierCurveTo(cx - side * w * 0.9, top - 1, cx + side * w * 0.9, top - 1,
                      cx + side * w * 1.08, cy - 3);
    ctx.lineTo(cx + side * (w + 7), cy - 8 * open);
    ctx.stroke();
    // The lid's crease above it.
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(cx - side * w * 0.6, top - 7);
    ctx.quadraticCurveTo(cx + side * w * 0.3, top - 11, cx + side * w * 1.05, top - 3);
    ctx.stroke();
    // Lower lash: a short thin line.
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(cx - 9, bottom - 1);
    ctx.quadraticCurveTo(cx + side * 6, bottom + 1, cx + side * 18, bottom - 5);
    ctx.stroke();
    ctx.restore();
  }

  mouthShape(ctx, { open, wide, round }) {
    const cx = 200;
    const cy = 284;
    const half = 9 + 14 * wide * (1 - 0.45 * round);
    ctx.save();
    ctx.strokeStyle = LINE;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (open < 0.06) {
      // At rest: a small smile; pressed lips (PP) a flatter line.
      ctx.lineWidth = 2.2;
      ctx.beginPath();
      ctx.moveTo(cx - half, cy - 1);
      ctx.quadraticCurveTo(cx, cy + 6 - round * 5, cx + half, cy - 1);
      ctx.stroke();
      ctx.restore();
      return;
    }
    const h = 3 + 20 * open;
    const upper = cy - h * (0.15 + 0.3 * round);
    const lower = cy + h * (0.95 + 0.2 * round);
    const lips = () => {
      ctx.beginPath();
      ctx.moveTo(cx - half, cy);
      ctx.bezierCurveTo(cx - half * (0.7 - 0.3 * round), upper, cx + half * (0.7 - 0.3 * round),
                        upper, cx + half, cy);
      ctx.bezierCurveTo(cx + half * (0.85 + 0.15 * round), lower, cx - half * (0.85 + 0.15 * round),
                        lower, cx - half, cy);
      ctx.closePath();
    };
    lips();
    ctx.fillStyle = "#7f2a37";
    ctx.fill();
    ctx.save();
    ctx.clip();
    if (open > 0.25 && round < 0.6) {
      ctx.fillStyle = "#ffffff"; // upper teeth
      ctx.fillRect(cx - half, upper - 2, 2 * half, (cy - upper) + h * 0.12 + 2);
    }
    ctx.fillStyle = "#e2727f"; // tongue
    ctx.beginPath();
    ctx.ellipse(cx, lower, half * 0.62, h * 0.38, 0, 0, Math.PI * 2);
    ctx.fill();
    ctx.restore();
    lips();
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.restore();
  }

  fringePath(ctx) {
    ctx.beginPath();
    // Outer edge: from the left side lock, over the crown, to the right side lock.
    ctx.moveTo(118, 284);
    ctx.bezierCurveTo(96, 240, 88, 170, 112, 128);
    ctx.bezierCurveTo(140, 80, 260, 80, 288, 128);
    ctx.bezierCurveTo(312, 170, 304, 240, 282, 284);
    // Inner edge of the right lock, then the bangs from right to left, in pointed strands.
    ctx.quadraticCurveTo(278, 230, 268, 186);
    const tips = [[256, 204], [240, 160], [224, 198], [212, 162], [196, 206], [180, 160],
                  [166, 200], [152, 164], [140, 202], [132, 186]];
    let [px, py] = [268, 186];
    for (const [x, y] of tips) {
      ctx.quadraticCurveTo((px + x) / 2 + (y > py ? 4 : -4), Math.min(py, y) + 6, x, y);
      [px, py] = [x, y];
    }
    ctx.quadraticCurveTo(124, 232, 118, 284);
    ctx.closePath();
  }

  fringe(ctx) {
    const { hair } = this.look;
    const fill = ctx.createLinearGradient(0, 90, 0, 280);
    fill.addColorStop(0, shade(hair, 0.12));
    fill.addColorStop(1, hair);
    ctx.fillStyle = fill;
    ctx.strokeStyle = shade(hair, -0.35);
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    this.fringePath(ctx);
    ctx.fill();
    ctx.stroke();

    // Strand lines and the ring of light on the crown.
    ctx.strokeStyle = shade(hair, -0.3);
    ctx.lineWidth = 1.5;
    for (const [x0, x1] of [[170, 160], [205, 200], [236, 246], [140, 128], [262, 272]]) {
      ctx.beginPath();
      ctx.moveTo(x0 + (x0 - 200) * 0.1, 110);
      ctx.quadraticCurveTo(x1, 140, x1 + (x1 - 200) * 0.1, 175);
      ctx.stroke();
    }
    // The ring of light: short glossy lenses along an arc across the crown.
    ctx.fillStyle = shade(hair, 0.45);
    ctx.globalAlpha = 0.55;
    for (let i = 0; i < 6; i++) {
      const angle = Math.PI * (1.16 + i * 0.135);
      const x = 200 + 82 * Math.cos(angle);
      const y = 152 + 40 * Math.sin(angle);
      ctx.save();
      ctx.translate(x, y);
      ctx.rotate(angle + Math.PI / 2);
      ctx.beginPath();
      ctx.moveTo(-11, 0);
      ctx.quadraticCurveTo(0, -4.5, 11, 0);
      ctx.quadraticCurveTo(0, 4.5, -11, 0);
      ctx.fill();
      ctx.restore();
    }
    ctx.globalAlpha = 1;
  }
}
