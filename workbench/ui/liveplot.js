// LivePlot front end: a <canvas> fed binary buffers by workbench/ui/liveplot.py.
//
// It holds no logic of its own: it keeps the points Python sent in a ring and
// draws them when new ones arrive (requestAnimationFrame), and reports back how
// many frames it drew per second and how long a message took from send to
// screen. Message layouts are described in liveplot.py (DataMessage).

/**
 * @typedef {object} DataMessage
 * @property {"data"|"snapshot"} type
 * @property {number} seq
 * @property {number} x0        sample index of the first point
 * @property {number} dx        samples between points
 * @property {number} n         points in the buffer
 * @property {number} channels  values per point
 * @property {number} bucket    samples per min/max bucket (1: not decimated)
 * @property {number} capacity  points to keep for the whole window
 * @property {number} total     samples pushed so far
 * @property {number} sent_ms   Date.now()-compatible send time
 * @property {number} pushed_ms time of the earliest push in the message
 */
/**
 * @typedef {object} SpectrogramMessage
 * @property {"spec"|"spec_snapshot"} type
 * @property {number} x0        sample index where the first column starts
 * @property {number} hop       samples between columns
 * @property {number} n_fft     samples per column
 * @property {number} n         columns in the buffer (uint8, n * bins, 0 Hz first)
 * @property {number} bins
 * @property {number} capacity  columns to keep for the whole window
 */
/** @typedef {{type: "clear", seq: number}} ClearMessage */
/** @typedef {{type: "hello"}} HelloMessage */

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const STATS_INTERVAL_MS = 500;   // how often fps and lag go back to Python
const HEIGHT_PX = 320;           // CSS height of the canvas
const MARGIN = { left: 64, right: 14, top: 28, bottom: 38 };
const FONT_PX = 12;
const TRACE_WIDTH_DEVICE_PX = 1;
const MAX_PENDING = 256;         // undrawn messages remembered for the lag figures
const AUTOSCALE_PAD = 0.08;      // fraction of the data span added above and below
const AUTOSCALE_SHRINK = 0.4;    // refit when the data fills less than this of the axis

/** A ring of points: x (sample index) and `nch` values per point. */
/** The slot a ring of ``cap`` entries (fields head, len, cap) writes next; once full, its
 * oldest entry is overwritten. */
function claimSlot(ring) {
  if (ring.len < ring.cap) return (ring.head + ring.len++) % ring.cap;
  const slot = ring.head;
  ring.head = (ring.head + 1) % ring.cap;
  return slot;
}

class Ring {
  constructor(capacity, nch) {
    this.cap = Math.max(1, capacity);
    this.nch = nch;
    this.x = new Float64Array(this.cap);
    this.y = new Float32Array(this.cap * nch);
    this.head = 0;  // index of the oldest point
    this.len = 0;
  }
  /** @param {number} x0 @param {number} dx @param {Float32Array} values n*nch */
  append(x0, dx, values) {
    const nch = this.nch, n = values.length / nch;
    let from = 0;
    if (n > this.cap) from = n - this.cap;
    for (let i = from; i < n; i++) {
      const slot = claimSlot(this);
      this.x[slot] = x0 + i * dx;
      this.y.set(values.subarray(i * nch, (i + 1) * nch), slot * nch);
    }
  }
  lastX() {
    return this.len ? this.x[(this.head + this.len - 1) % this.cap] : 0;
  }
}

/** 256 RGB entries from dark blue through green to yellow (a viridis-like ramp). */
const LUT = (() => {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const f = i / 255 * (stops.length - 1), k = Math.min(stops.length - 2, Math.floor(f));
    const u = f - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * u;
  }
  return lut;
})();

/**
 * Spectrogram columns in a ring, painted into an offscreen canvas (one pixel per bin, one
 * column per slot, 0 Hz at the bottom) as they arrive, so a frame only scales an image.
 */
class SpecRing {
  constructor(capacity, bins, hop, nfft) {
    this.cap = Math.max(1, capacity);
    this.bins = bins;
    this.hop = hop;
    this.nfft = nfft;
    this.x = new Float64Array(this.cap);
    this.head = 0;
    this.len = 0;
    this.canvas = document.createElement("canvas");
    this.canvas.width = this.cap;
    this.canvas.height = bins;
    this.ctx = this.canvas.getContext("2d");
    this.img = this.ctx.createImageData(this.cap, bins);
    this.dirtyLo = Infinity;
    this.dirtyHi = -1;
  }
  /** @param {number} x0 @param {Uint8Array} cols n*bins */
  append(x0, cols) {
    const bins = this.bins, n = cols.length / bins, px = this.img.data, w = this.cap;
    for (let i = Math.max(0, n - this.cap); i < n; i++) {
      const slot = claimSlot(this);
      this.x[slot] = x0 + i * this.hop;
      for (let j = 0; j < bins; j++) {
        const v = cols[i * bins + j], o = ((bins - 1 - j) * w + slot) * 4;
        px[o] = LUT[v * 3];
        px[o + 1] = LUT[v * 3 + 1];
        px[o + 2] = LUT[v * 3 + 2];
        px[o + 3] = 255;
      }
      if (slot < this.dirtyLo) this.dirtyLo = slot;
      if (slot > this.dirtyHi) this.dirtyHi = slot;
    }
  }
  /** Copy the columns written since the last call into the offscreen canvas. */
  paint() {
    if (this.dirtyHi < 0) return;
    this.ctx.putImageData(this.img, 0, 0, this.dirtyLo, 0, this.dirtyHi - this.dirtyLo + 1, this.bins);
    this.dirtyLo = Infinity;
    this.dirtyHi = -1;
  }
  lastX() {
    return this.len ? this.x[(this.head + this.len - 1) % this.cap] : 0;
  }
}

/** Float32 view of a buffer from the kernel (DataView or ArrayBuffer), copied if unaligned. */
function floats(buf) {
  if (buf instanceof ArrayBuffer) return new Float32Array(buf);
  const { buffer, byteOffset, byteLength } = buf;
  if (byteOffset % 4 === 0) return new Float32Array(buffer, byteOffset, byteLength / 4);
  return new Float32Array(buffer.slice(byteOffset, byteOffset + byteLength));
}

/** Uint8 view of a buffer from the kernel (DataView or ArrayBuffer). */
function bytes(buf) {
  if (buf instanceof ArrayBuffer) return new Uint8Array(buf);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** "Nice" step (1, 2, 5 x 10^k) for about `count` ticks over `span`. */
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function ticks(lo, hi, count) {
  if (!(hi > lo)) return { step: 1, values: [] };
  const step = niceStep(hi - lo, count);
  const values = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return { step, values };
}

function label(v, step) {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

function median(values) {
  const s = values.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function render({ model, el }) {
  el.classList.add("wb-liveplot");
  const root = document.createElement("div");
  root.style.cssText = "contain:content;display:flex;flex-direction:column;width:100%;min-width:240px;" +
    "font-family:var(--jp-ui-font-family, sans-serif);color:var(--jp-ui-font-color1, #222);";
  const header = document.createElement("div");
  header.style.cssText = "display:flex;align-items:center;gap:8px;min-height:24px;";
  const titleEl = document.createElement("span");
  titleEl.className = "wb-liveplot-title";
  titleEl.style.cssText = "font-weight:600;flex:1;";
  const statusEl = document.createElement("span");
  statusEl.className = "wb-liveplot-status";
  statusEl.style.cssText = "font-size:11px;opacity:0.7;font-variant-numeric:tabular-nums;";
  const pauseBtn = document.createElement("button");
  pauseBtn.className = "wb-liveplot-pause";
  pauseBtn.style.cssText = "font-size:11px;padding:1px 8px;cursor:pointer;";
  const viewBtn = document.createElement("button");
  viewBtn.className = "wb-liveplot-view";
  viewBtn.style.cssText = pauseBtn.style.cssText;
  header.append(titleEl, statusEl, viewBtn, pauseBtn);
  const canvas = document.createElement("canvas");
  canvas.style.cssText = `display:block;width:100%;height:${HEIGHT_PX}px;`;
  root.append(header, canvas);
  el.append(root);
  const ctx = canvas.getContext("2d");

  /** @type {Ring|null} */
  let ring = null;
  /** @type {SpecRing|null} */
  let spec = null;
  let dirty = true;
  let raf = 0;
  let cssW = 0, cssH = HEIGHT_PX, dpr = 1;
  let yLo = NaN, yHi = NaN;          // autoscaled range, kept until the data leaves it
  let pending = [];                  // [sent_ms, pushed_ms] of messages not drawn yet
  let lags = [], frames = 0, totalFrames = 0, messages = 0, drawMs = 0, draws = 0;
  let statsStart = performance.now();
  let lag = null, lagMax = null;     // of the last report interval that drew something
  let theme = null;                  // colours and font, see readTheme()

  function syncHeader() {
    titleEl.textContent = model.get("title");
    pauseBtn.textContent = model.get("paused") ? "Resume" : "Pause";
    const specView = model.get("view") === "spectrogram";
    viewBtn.textContent = specView ? "Traces" : "Spectrogram";
    viewBtn.title = specView ? "draw a line per channel" : "draw a spectrogram of the first channel";
    el.dataset.view = model.get("view");
    dirty = true;
  }

  /** @param {DataMessage|SpectrogramMessage|ClearMessage} msg @param {(DataView|ArrayBuffer)[]} buffers */
  function onMessage(msg, buffers) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "spec" || msg.type === "spec_snapshot") {
      if (msg.type === "spec_snapshot" || !spec || spec.cap !== msg.capacity ||
          spec.bins !== msg.bins || spec.hop !== msg.hop) {
        spec = new SpecRing(msg.capacity, msg.bins, msg.hop, msg.n_fft);
      }
      if (msg.n > 0 && buffers && buffers.length) spec.append(msg.x0, bytes(buffers[0]));
      dirty = true;
      return;
    }
    if (msg.type === "clear") {
      spec = null;
      ring = null;
      lag = lagMax = null;
      yLo = yHi = NaN;
      dirty = true;
      return;
    }
    if (msg.type !== "data" && msg.type !== "snapshot") return;
    messages++;
    if (msg.type === "snapshot" || !ring || ring.cap !== msg.capacity || ring.nch !== msg.channels) {
      ring = new Ring(msg.capacity, msg.channels);
      yLo = yHi = NaN;
    }
    if (msg.n > 0 && buffers && buffers.length) {
      ring.append(msg.x0, msg.dx, floats(buffers[0]));
    }
    pending.push([msg.sent_ms, msg.pushed_ms]);
    if (pending.length > MAX_PENDING) pending.shift();  // hidden view: rAF does not run
    dirty = true;
  }

  function resize() {
    const rect = canvas.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    cssW = Math.max(1, Math.round(rect.width));
    cssH = Math.max(1, Math.round(rect.height));
    theme = null;
    const w = Math.round(cssW * dpr), h = Math.round(cssH * dpr);
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    dirty = true;
  }

  function yRange(lo, hi) {
    const fixed = model.get("y_range");
    if (fixed && fixed.length === 2) return [fixed[0], fixed[1]];
    if (!(hi >= lo)) return isFinite(yLo) ? [yLo, yHi] : [-1, 1];
    let span = hi - lo;
    if (span === 0) span = Math.abs(hi) * 0.1 || 1;
    const outside = !(lo >= yLo && hi <= yHi);
    const tooLoose = span < AUTOSCALE_SHRINK * (yHi - yLo);
    if (!isFinite(yLo) || outside || tooLoose) {
      const a = lo - span * AUTOSCALE_PAD, b = hi + span * AUTOSCALE_PAD;
      const step = niceStep(b - a, 5);
      yLo = Math.floor(a / step) * step;
      yHi = Math.ceil(b / step) * step;
    }
    return [yLo, yHi];
  }

  // theme colours from JupyterLab's CSS variables, read on resize and now and then, not per frame
  // (getComputedStyle forces a style recalculation of the page when anything changed)
  function readTheme() {
    const style = getComputedStyle(el);
    const v = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    theme = {
      fg: v("--jp-ui-font-color1", "#222"),
      grid: v("--jp-border-color2", "#e0e0e0"),
      bg: v("--jp-layout-color0", "#fff"),
      font: `${FONT_PX}px ${v("--jp-ui-font-family", "sans-serif")}`,
    };
  }

  function draw() {
    if (!theme) readTheme();
    const { fg, grid, bg, font } = theme;
    const names = model.get("channels") || [];
    const rate = model.get("rate_hz") || 1;
    const windowS = model.get("window_s") || 1;
    const units = model.get("units") || "";

    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = bg;
    ctx.fillRect(0, 0, cssW, cssH);
    ctx.font = font;
    const px0 = MARGIN.left, px1 = cssW - MARGIN.right;
    const py0 = MARGIN.top, py1 = cssH - MARGIN.bottom;
    const pw = Math.max(1, px1 - px0), ph = Math.max(1, py1 - py0);

    const specView = model.get("view") === "spectrogram";
    // time window: the latest `window_s` seconds, starting at 0 until it fills
    const specEnd = spec && spec.len ? (spec.lastX() + spec.nfft) / rate : 0;
    const tEnd = Math.max(windowS, ring ? ring.lastX() / rate : 0, specView ? specEnd : 0);
    const tStart = tEnd - windowS;
    const xMin = tStart * rate;

    // visible value range
    let lo = Infinity, hi = -Infinity;
    if (ring) {
      const { x, y, cap, nch } = ring;
      for (let k = 0; k < ring.len; k++) {
        const s = (ring.head + k) % cap;
        if (x[s] < xMin) continue;
        for (let c = 0; c < nch; c++) {
          const v = y[s * nch + c];
          if (v < lo && v > -Infinity) lo = v;   // NaN and infinities do not scale the axis
          if (v > hi && v < Infinity) hi = v;
        }
      }
    }
    const nyquist = rate / 2, khz = nyquist >= 2000;
    const [y0, y1] = specView ? (khz ? [0, nyquist / 1000] : [0, nyquist]) : yRange(lo, hi);
    const sx = pw / windowS, sy = ph / (y1 - y0);
    const toPx = (t) => px0 + (t - tStart) * sx;
    const toPy = (v) => py1 - (v - y0) * sy;

    // grid and tick labels
    ctx.lineWidth = 1;
    ctx.strokeStyle = grid;
    ctx.fillStyle = fg;
    const yt = ticks(y0, y1, Math.max(2, Math.floor(ph / 40)));
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.beginPath();
    for (const v of yt.values) {
      const py = Math.round(toPy(v)) + 0.5;
      ctx.moveTo(px0, py);
      ctx.lineTo(px1, py);
      ctx.fillText(label(v, yt.step), px0 - 6, py);
    }
    const xt = ticks(tStart, tEnd, Math.max(2, Math.floor(pw / 80)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const tv of xt.values) {
      const px = Math.round(toPx(tv)) + 0.5;
      ctx.moveTo(px, py0);
      ctx.lineTo(px, py1);
      ctx.fillText(label(tv, xt.step), px, py1 + 5);
    }
    ctx.stroke();
    ctx.strokeStyle = fg;
    ctx.strokeRect(px0 + 0.5, py0 + 0.5, pw - 1, ph - 1);
    ctx.fillText("time (s)", px0 + pw / 2, py1 + 5 + FONT_PX + 4);
    const yName = specView ? (khz ? "frequency (kHz)" : "frequency (Hz)") : units;
    if (yName) {
      ctx.save();
      ctx.translate(12, py0 + ph / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = "middle";
      ctx.fillText(yName, 0, 0);
      ctx.restore();
    }

    if (specView) {
      drawSpectrogram(px0, py0, pw, ph, tStart, sx, rate);
      const [dbLo, dbHi] = model.get("spectrogram_db") || [-100, 0];
      ctx.fillStyle = fg;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(`${names[0] || ""}: ${dbLo} .. ${dbHi} dB`, px1, py0 / 2);
      return;
    }

    // traces
    if (ring && ring.len) {
      const { x, y, cap, nch } = ring;
      ctx.save();
      ctx.beginPath();
      ctx.rect(px0, py0, pw, ph);
      ctx.clip();
      // traces are 1 *device* pixel wide: that is Skia's hairline path. Without a GPU a wider
      // stroke of 6 x 2000 points (1.25 px, or 1 CSS px at devicePixelRatio 2) costs tens of
      // ms of raster per frame and the plot drops to ~12-25 frames/s; a hairline, a few ms
      ctx.lineWidth = TRACE_WIDTH_DEVICE_PX / dpr;
      for (let c = 0; c < nch; c++) {
        ctx.strokeStyle = COLORS[c % COLORS.length];
        ctx.beginPath();
        let pen = false;
        for (let k = 0; k < ring.len; k++) {
          const s = (ring.head + k) % cap;
          if (x[s] < xMin) continue;
          const v = y[s * nch + c];
          if (v !== v) { pen = false; continue; }  // NaN: a gap
          const px = px0 + (x[s] / rate - tStart) * sx, py = py1 - (v - y0) * sy;
          if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
        }
        ctx.stroke();
      }
      ctx.restore();
    }

    // legend, in the strip above the plot, right-aligned
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    let lx = px1;
    const ly = py0 / 2;
    for (let c = names.length - 1; c >= 0; c--) {
      const w = ctx.measureText(names[c]).width;
      lx -= w;
      ctx.fillStyle = fg;
      ctx.fillText(names[c], lx, ly);
      lx -= 20;
      ctx.strokeStyle = COLORS[c % COLORS.length];
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.moveTo(lx, ly);
      ctx.lineTo(lx + 16, ly);
      ctx.stroke();
      lx -= 12;
    }
    if (model.get("paused")) {
      ctx.fillStyle = fg;
      ctx.textAlign = "left";
      ctx.fillText("paused", px0, ly);
    }
  }

  /** The spectrogram image, its ring's one or two runs of slots placed at their times. */
  function drawSpectrogram(px0, py0, pw, ph, tStart, sx, rate) {
    if (!spec || !spec.len) return;
    spec.paint();
    ctx.save();
    ctx.beginPath();
    ctx.rect(px0, py0, pw, ph);
    ctx.clip();
    ctx.imageSmoothingEnabled = false;
    const runs = [[spec.head, Math.min(spec.cap, spec.head + spec.len)]];
    if (spec.head + spec.len > spec.cap) runs.push([0, spec.head + spec.len - spec.cap]);
    const colW = spec.hop / rate * sx;
    for (const [a, b] of runs) {
      if (b <= a) continue;
      // a column is drawn over the hop after its start, centred on its window
      const left = px0 + ((spec.x[a] + (spec.nfft - spec.hop) / 2) / rate - tStart) * sx;
      ctx.drawImage(spec.canvas, a, 0, b - a, spec.bins, left, py0, (b - a) * colW, ph);
    }
    ctx.restore();
  }

  function frame() {
    raf = requestAnimationFrame(frame);
    if (!dirty || cssW <= 1) return;
    dirty = false;
    const t0 = performance.now();
    draw();
    drawMs += performance.now() - t0;
    draws++;
    if (!pending.length) return;  // a redraw without new data is not counted
    const now = Date.now();
    const frameLags = [], frameAges = [];
    for (const [sent, pushed] of pending) {
      frameLags.push(now - sent);
      frameAges.push(now - pushed);
    }
    pending = [];
    lags.push(...frameLags);
    frames++;
    totalFrames++;
    el.dispatchEvent(new CustomEvent("liveplot:frame",
      { detail: { t: now, lags_ms: frameLags, ages_ms: frameAges } }));
  }

  function report() {
    const now = performance.now();
    theme = null;  // pick up a theme change within a report interval
    const fps = frames * 1000 / Math.max(1, now - statsStart);
    if (lags.length) {
      lag = median(lags);
      lagMax = Math.max(...lags);
    }
    statsStart = now;
    frames = 0;
    lags = [];
    el.dataset.fps = fps.toFixed(1);
    el.dataset.lagMs = lag === null ? "" : lag.toFixed(1);
    el.dataset.lagMsMax = lagMax === null ? "" : lagMax.toFixed(1);
    el.dataset.frames = String(totalFrames);
    el.dataset.messages = String(messages);
    el.dataset.points = String(ring ? ring.len : 0);  // points held per trace
    // time in seconds of the newest point held: the right end of the time axis once it scrolls
    el.dataset.specColumns = String(spec ? spec.len : 0);
    el.dataset.lastT = ring && ring.len ? (ring.lastX() / (model.get("rate_hz") || 1)).toFixed(3) : "";
    el.dataset.drawMs = draws ? (drawMs / draws).toFixed(2) : "";  // mean time in draw()
    drawMs = 0;
    draws = 0;
    statusEl.textContent = `${fps.toFixed(0)} fps` + (lag === null ? "" : ` · lag ${lag.toFixed(0)} ms`);
    model.set("fps", fps);
    model.set("lag_ms", lag);
    model.set("lag_ms_max", lagMax);
    model.save_changes();
  }

  const onPause = () => {
    model.set("paused", !model.get("paused"));
    model.save_changes();
  };
  const onView = () => {
    model.set("view", model.get("view") === "spectrogram" ? "traces" : "spectrogram");
    model.save_changes();
  };
  const onRedraw = () => { dirty = true; };
  const redrawTraits = ["change:channels", "change:units", "change:y_range", "change:window_s",
    "change:rate_hz", "change:spectrogram_db"];

  pauseBtn.addEventListener("click", onPause);
  viewBtn.addEventListener("click", onView);
  model.on("change:view", syncHeader);
  model.on("msg:custom", onMessage);
  model.on("change:title", syncHeader);
  model.on("change:paused", syncHeader);
  for (const ev of redrawTraits) model.on(ev, onRedraw);
  const observer = new ResizeObserver(resize);
  observer.observe(canvas);
  window.addEventListener("resize", resize);
  const statsTimer = setInterval(report, STATS_INTERVAL_MS);

  syncHeader();
  resize();
  raf = requestAnimationFrame(frame);
  /** @type {HelloMessage} */
  const hello = { type: "hello" };
  model.send(hello);  // Python answers with a snapshot of the window

  return () => {
    cancelAnimationFrame(raf);
    clearInterval(statsTimer);
    observer.disconnect();
    window.removeEventListener("resize", resize);
    pauseBtn.removeEventListener("click", onPause);
    viewBtn.removeEventListener("click", onView);
    model.off("change:view", syncHeader);
    model.off("msg:custom", onMessage);
    model.off("change:title", syncHeader);
    model.off("change:paused", syncHeader);
    for (const ev of redrawTraits) model.off(ev, onRedraw);
    root.remove();
    el.classList.remove("wb-liveplot");
  };
}

export default { render };
