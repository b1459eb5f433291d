// Labeler front end: draws what workbench/ui/labeler.py sends and reports what the user does.
//
// It holds no logic: every drag, click, key and button becomes a message
// ({type: ...}, see FRONT_MESSAGES in labeler.py) that Python turns into a
// LabelEditor call; Python then re-sends the state (traits) and this redraws.
// The recording and the energy curve arrive as float32 buffers, already
// decimated to the canvas width by Python (TraceMessage, EnergyMessage).

/**
 * @typedef {object} TraceMessage
 * @property {"trace"} type
 * @property {string} rec_id
 * @property {number} n         points
 * @property {number} channels  values per point
 * @property {number} x0        sample index of point 0
 * @property {number} dx        samples between points
 * @property {number} samples   samples in the recording
 * @property {number} lo        smallest value
 * @property {number} hi        largest value
 */
/** @typedef {{type: "energy", rec_id: string, n: number, x0: number, dx: number}} EnergyMessage */

const TRACE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const SIGNAL_PX = 200;          // height of the signal panel
const ENERGY_PX = 80;           // height of the energy panel (when proposals were computed)
const GAP_PX = 8;
const MARGIN = { left: 60, right: 14, top: 22, bottom: 34 };
const FONT_PX = 12;
const CLICK_PX = 4;             // a drag shorter than this is a click
const SLIDER_STEPS = 400;

const CSS = `
.wb-labeler { font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px;
  color: var(--jp-ui-font-color1, #222); outline: none; border: 1px solid transparent;
  border-radius: 4px; padding: 4px; }
.wb-labeler:focus-within { border-color: var(--jp-brand-color1, #1976d2); }
.wb-labeler-row { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin: 4px 0; }
.wb-labeler button { font-size: 12px; padding: 2px 10px; cursor: pointer; border-radius: 3px;
  border: 1px solid var(--jp-border-color1, #bbb); background: var(--jp-layout-color1, #f7f7f7);
  color: inherit; }
.wb-labeler button:disabled { opacity: 0.45; cursor: default; }
.wb-labeler button.wb-label { border-left-width: 6px; }
.wb-labeler kbd { font-size: 10px; opacity: 0.7; margin-right: 4px; }
.wb-labeler select, .wb-labeler input[type=text] { font-size: 12px; padding: 2px 4px; }
.wb-labeler-status { font-size: 12px; opacity: 0.85; }
.wb-labeler-status.error { color: var(--jp-error-color1, #c62828); opacity: 1; font-weight: 600; }
.wb-labeler-legend span { margin-right: 10px; white-space: nowrap; }
.wb-labeler-legend i { display: inline-block; width: 14px; height: 3px; margin-right: 4px;
  vertical-align: middle; }
.wb-labeler-hint { font-size: 11px; opacity: 0.65; }
`;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function floats(buf) {
  if (!buf) return new Float32Array(0);
  if (buf instanceof ArrayBuffer) return new Float32Array(buf);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

function ticks(lo, hi, count) {
  const step = niceStep(hi - lo, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return { values: out, step };
}

function fmt(v, step) {
  const digits = Math.max(0, -Math.floor(Math.log10(step || 1)));
  return v.toFixed(Math.min(6, digits));
}

function withAlpha(hex, alpha) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex || "");
  if (!m) return `rgba(128,128,128,${alpha})`;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

function render({ model, el: host }) {
  const root = el("div", "wb-labeler");
  root.tabIndex = 0;
  // Lumino (JupyterLab) leaves keys typed inside this element to us
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  const style = el("style");
  style.textContent = CSS;

  // header: recording picker, whole-recording label, status
  const top = el("div", "wb-labeler-row");
  const picker = el("select", "wb-labeler-picker");
  picker.title = "Recording to label";
  const recLabel = el("select", "wb-labeler-reclabel");
  recLabel.title = "Label of the whole recording";
  const status = el("span", "wb-labeler-status");
  top.append(el("b", "", "Recording"), picker, el("span", "", "whole recording:"), recLabel, status);

  const legend = el("div", "wb-labeler-row wb-labeler-legend");
  const canvas = el("canvas", "wb-labeler-canvas");
  canvas.style.cssText = "display:block;width:100%;cursor:crosshair;touch-action:none;";
  const ctx = canvas.getContext("2d");

  // label buttons, new label, undo/redo/delete
  const labelRow = el("div", "wb-labeler-row wb-labeler-labels");
  const buttons = el("span", "wb-labeler-buttons");
  buttons.style.cssText = "display:contents;";
  const newLabel = el("input", "wb-labeler-newlabel");
  newLabel.type = "text";
  newLabel.placeholder = "new label, Enter";
  newLabel.size = 14;
  const undoBtn = el("button", "wb-labeler-undo", "↶ Undo");
  undoBtn.title = "Undo (ctrl/cmd+z)";
  const redoBtn = el("button", "wb-labeler-redo", "↷ Redo");
  redoBtn.title = "Redo (ctrl/cmd+shift+z)";
  const deleteBtn = el("button", "wb-labeler-delete", "Remove region");
  deleteBtn.title = "Remove the regions under the selection (Backspace/Delete)";
  labelRow.append(buttons, newLabel, el("span", "", "|"), undoBtn, redoBtn, deleteBtn);

  // proposals
  const proposeRow = el("div", "wb-labeler-row wb-labeler-proposals");
  const slider = el("input", "wb-labeler-threshold");
  slider.type = "range";
  slider.min = "0";
  slider.max = String(SLIDER_STEPS);
  slider.title = "Energy threshold";
  const thresholdText = el("span", "wb-labeler-threshold-value", "auto");
  const proposeBtn = el("button", "wb-labeler-propose", "Propose");
  proposeBtn.title = "Find events by signal energy (automatic threshold until you move the slider)";
  const acceptLabel = el("select", "wb-labeler-accept-label");
  const acceptBtn = el("button", "wb-labeler-accept", "Accept proposals");
  const clearBtn = el("button", "wb-labeler-clear-proposals", "Clear");
  proposeRow.append(el("span", "", "threshold"), slider, thresholdText, proposeBtn,
    el("span", "", "as"), acceptLabel, acceptBtn, clearBtn);

  const hint = el("div", "wb-labeler-hint",
    "Drag to select · click a region to select it · 1–9 label · Backspace remove · " +
    "Esc clear · ctrl/cmd+z undo · ctrl/cmd+shift+z redo");

  root.append(style, top, legend, canvas, labelRow, proposeRow, hint);
  host.append(root);

  let trace = null;     // {msg, y: Float32Array}
  let energy = null;    // {msg, y: Float32Array}
  let drag = null;      // {x0, x1} in CSS px while dragging
  let cssW = 0, cssH = 0, dpr = 1;
  let raf = 0, dirty = true, lastWidth = 0;
  let sliderTouched = false;

  const send = (msg) => model.send(msg);
  const samples = () => (model.get("info") || {}).samples || 0;
  const plotW = () => Math.max(1, cssW - MARGIN.left - MARGIN.right);
  const toPx = (s) => MARGIN.left + (s / Math.max(1, samples())) * plotW();
  const toSample = (px) => ((px - MARGIN.left) / plotW()) * samples();
  const redraw = () => { dirty = true; };

  // ------------------------------------------------------------------ DOM from state
  function syncPicker() {
    const recs = model.get("recordings") || [];
    const current = model.get("rec_id");
    picker.replaceChildren(...recs.map((r) => {
      const o = el("option", "", `${r.id} · ${r.label || "no label"} · ${Number(r.seconds).toFixed(1)} s` +
        (r.regions ? ` · ${r.regions} region${r.regions === 1 ? "" : "s"}` : ""));
      o.value = r.id;
      o.selected = r.id === current;
      return o;
    }));
    picker.disabled = !recs.length;
  }

  function syncLabels() {
    const labels = model.get("labels") || [];
    const colors = model.get("colors") || {};
    const keys = Object.fromEntries(Object.entries(model.get("shortcuts") || {}).map(([k, v]) => [v, k]));
    buttons.replaceChildren(...labels.map((lab) => {
      const b = el("button", "wb-label");
      b.dataset.label = lab;
      b.style.borderLeftColor = colors[lab] || "#888";
      if (keys[lab]) b.append(el("kbd", "", keys[lab]));
      b.append(document.createTextNode(lab));
      b.title = `Label the selection "${lab}"` + (keys[lab] ? ` (key ${keys[lab]})` : "");
      b.addEventListener("click", () => send({ type: "label", label: lab }));
      return b;
    }));
    const info = model.get("info") || {};
    const keep = acceptLabel.value;
    recLabel.replaceChildren(el("option", "", "(none)"), ...labels.map((lab) => el("option", "", lab)));
    recLabel.options[0].value = "";
    recLabel.value = info.label || "";
    acceptLabel.replaceChildren(...labels.map((lab) => el("option", "", lab)));
    if (labels.includes(keep)) acceptLabel.value = keep;
    syncButtons();
  }

  function syncButtons() {
    undoBtn.disabled = !model.get("can_undo");
    redoBtn.disabled = !model.get("can_redo");
    const sel = model.get("selection") || [];
    deleteBtn.disabled = sel.length !== 2;
    const canPropose = model.get("can_propose") && !!model.get("rec_id");
    proposeRow.style.display = model.get("can_propose") ? "" : "none";
    proposeBtn.disabled = !canPropose;
    const nProp = (model.get("proposals") || []).length;
    acceptBtn.disabled = !nProp || !(model.get("labels") || []).length;
    acceptBtn.textContent = nProp ? `Accept ${nProp} proposal${nProp === 1 ? "" : "s"}` : "Accept proposals";
    clearBtn.disabled = model.get("threshold") === null;
    const th = model.get("threshold");
    const max = model.get("threshold_max") || 1;
    slider.disabled = th === null;
    if (th !== null) {
      slider.value = String(Math.round((th / max) * SLIDER_STEPS));
      thresholdText.textContent = th.toPrecision(3);
    } else {
      thresholdText.textContent = "auto";
    }
    root.dataset.regions = String((model.get("regions") || []).length);
    root.dataset.selection = sel.join(",");
  }

  function syncLegend() {
    const info = model.get("info") || {};
    const names = info.channels || [];
    legend.replaceChildren(...names.map((name, i) => {
      const s = el("span");
      const sw = el("i");
      sw.style.background = TRACE_COLORS[i % TRACE_COLORS.length];
      s.append(sw, document.createTextNode(name));
      return s;
    }));
    if (info.samples !== undefined) {
      legend.append(el("span", "", `${info.sensor || ""} · ${info.units || ""} · ` +
        `${Number(info.rate_hz).toFixed(4).replace(/\.?0+$/, "")} Hz · ${info.samples} samples · ` +
        `${Number(info.duration_s).toFixed(2)} s`));
    }
  }

  function syncStatus() {
    const s = model.get("status") || {};
    status.textContent = s.text || "";
    status.className = "wb-labeler-status" + (s.level === "error" ? " error" : "");
  }

  function syncAll() {
    syncPicker();
    syncLabels();
    syncLegend();
    syncStatus();
    redraw();
  }

  // ---------------------------------------------------------------------- canvas
  function resize() {
    const rect = canvas.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    cssW = Math.max(1, Math.round(rect.width));
    cssH = MARGIN.top + SIGNAL_PX + (energy ? GAP_PX + ENERGY_PX : 0) + MARGIN.bottom;
    canvas.style.height = `${cssH}px`;
    const w = Math.round(cssW * dpr), h = Math.round(cssH * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const pw = Math.round(plotW());
    if (cssW > 1 && Math.abs(pw - lastWidth) > 0.1 * Math.max(lastWidth, 1)) {
      lastWidth = pw;
      send({ type: "hello", width: pw });  // Python re-decimates to the new width
    }
    redraw();
  }

  function draw() {
    const cs = getComputedStyle(root);
    const fg = cs.getPropertyValue("--jp-ui-font-color1").trim() || "#222";
    const grid = cs.getPropertyValue("--jp-border-color2").trim() || "#e0e0e0";
    const bg = cs.getPropertyValue("--jp-layout-color0").trim() || "#fff";
    const family = cs.getPropertyValue("--jp-ui-font-family").trim() || "sans-serif";
    const n = samples();
    const rate = (model.get("info") || {}).rate_hz || 1;
    const colors = model.get("colors") || {};
    const x0 = MARGIN.left, x1 = cssW - MARGIN.right, pw = plotW();
    const sTop = MARGIN.top, sBot = sTop + SIGNAL_PX;
    const eTop = sBot + GAP_PX, eBot = eTop + ENERGY_PX;
    const bottom = energy ? eBot : sBot;

    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = bg;
    ctx.fillRect(0, 0, cssW, cssH);
    ctx.font = `${FONT_PX}px ${family}`;
    if (!n) {
      ctx.fillStyle = fg;
      ctx.textAlign = "center";
      ctx.fillText(model.get("rec_id") ? "empty recording" : "no recordings in this dataset",
        cssW / 2, cssH / 2);
      return;
    }

    // regions: bands across both panels, label on top
    for (const r of model.get("regions") || []) {
      const a = toPx(r.start), b = toPx(r.end), c = colors[r.label] || "#888";
      ctx.fillStyle = withAlpha(c, 0.22);
      ctx.fillRect(a, sTop, b - a, bottom - sTop);
      ctx.fillStyle = c;
      ctx.fillRect(a, sTop - 4, b - a, 4);
      ctx.save();
      ctx.beginPath();
      ctx.rect(a, 0, Math.max(0, b - a), sTop);
      ctx.clip();
      ctx.font = `bold ${FONT_PX}px ${family}`;
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      ctx.fillText(r.label, a + 2, sTop - 5);
      ctx.restore();
    }

    // time axis and value grid
    const yLo = trace ? trace.msg.lo : -1, yHi = trace ? trace.msg.hi : 1;
    const pad = (yHi - yLo) * 0.06 || 1;
    const lo = yLo - pad, hi = yHi + pad;
    const toPy = (v) => sBot - ((v - lo) / (hi - lo)) * SIGNAL_PX;
    ctx.lineWidth = 1;
    ctx.strokeStyle = grid;
    ctx.fillStyle = fg;
    ctx.beginPath();
    const yt = ticks(lo, hi, 4);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of yt.values) {
      const py = Math.round(toPy(v)) + 0.5;
      ctx.moveTo(x0, py); ctx.lineTo(x1, py);
      ctx.fillText(fmt(v, yt.step), x0 - 6, py);
    }
    const dur = n / rate;
    const xt = ticks(0, dur, Math.max(2, Math.floor(pw / 90)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const tv of xt.values) {
      const px = Math.round(x0 + (tv / dur) * pw) + 0.5;
      ctx.moveTo(px, sTop); ctx.lineTo(px, bottom);
      ctx.fillText(fmt(tv, xt.step), px, bottom + 4);
    }
    ctx.stroke();
    ctx.fillText("time (s)", x0 + pw / 2, bottom + 4 + FONT_PX + 3);
    ctx.strokeStyle = fg;
    ctx.strokeRect(x0 + 0.5, sTop + 0.5, pw - 1, SIGNAL_PX - 1);

    // traces
    if (trace && trace.msg.n) {
      const { n: np, channels: nc, x0: tx0, dx } = trace.msg;
      const y = trace.y;
      ctx.save();
      ctx.beginPath();
      ctx.rect(x0, sTop, pw, SIGNAL_PX);
      ctx.clip();
      ctx.lineWidth = 1;
      for (let c = 0; c < nc; c++) {
        ctx.strokeStyle = TRACE_COLORS[c % TRACE_COLORS.length];
        ctx.beginPath();
        let pen = false;
        for (let i = 0; i < np; i++) {
          const v = y[i * nc + c];
          if (v !== v) { pen = false; continue; }
          const px = toPx(tx0 + i * dx), py = toPy(v);
          if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
        }
        ctx.stroke();
      }
      ctx.restore();
    }

    // energy panel: curve and threshold
    const th = model.get("threshold");
    if (energy && energy.msg.n) {
      const eMax = model.get("threshold_max") || 1;
      const toEy = (v) => eBot - (Math.min(v, eMax) / eMax) * ENERGY_PX;
      ctx.strokeStyle = fg;
      ctx.strokeRect(x0 + 0.5, eTop + 0.5, pw - 1, ENERGY_PX - 1);
      ctx.strokeStyle = "#555";
      ctx.lineWidth = 1.25;
      ctx.beginPath();
      for (let i = 0; i < energy.msg.n; i++) {
        const px = toPx(energy.msg.x0 + i * energy.msg.dx), py = toEy(energy.y[i]);
        if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      }
      ctx.stroke();
      if (th !== null) {
        ctx.strokeStyle = "#d62728";
        ctx.setLineDash([6, 4]);
        ctx.beginPath();
        const py = Math.round(toEy(th)) + 0.5;
        ctx.moveTo(x0, py); ctx.lineTo(x1, py);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#d62728";
        ctx.textAlign = "left";
        ctx.textBaseline = "bottom";
        ctx.fillText(`threshold ${th.toPrecision(3)}`, x0 + 4, py - 2);
      }
      ctx.fillStyle = fg;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText("energy", x0 - 6, eTop + ENERGY_PX / 2);
    }

    // proposals: dashed outlines
    ctx.strokeStyle = fg;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([5, 4]);
    for (const p of model.get("proposals") || []) {
      const a = toPx(p.start), b = toPx(p.end);
      ctx.strokeRect(a + 0.5, sTop + 2.5, b - a - 1, bottom - sTop - 5);
    }
    ctx.setLineDash([]);

    // selection: Python's, or the drag in progress
    let sa = null, sb = null;
    if (drag) { sa = Math.min(drag.x0, drag.x1); sb = Math.max(drag.x0, drag.x1); }
    else {
      const sel = model.get("selection") || [];
      if (sel.length === 2) { sa = toPx(sel[0]); sb = toPx(sel[1]); }
    }
    if (sa !== null) {
      ctx.fillStyle = "rgba(25,118,210,0.16)";
      ctx.fillRect(sa, sTop, sb - sa, bottom - sTop);
      ctx.strokeStyle = "#1976d2";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(sa + 0.5, sTop + 0.5, sb - sa - 1, bottom - sTop - 1);
    }
  }

  function frame() {
    raf = requestAnimationFrame(frame);
    if (!dirty || cssW <= 1) return;
    dirty = false;
    draw();
  }

  // ----------------------------------------------------------------------- input
  const localX = (e) => {
    const rect = canvas.getBoundingClientRect();
    return Math.min(Math.max(e.clientX - rect.left, MARGIN.left), cssW - MARGIN.right);
  };
  function onDown(e) {
    if (e.button !== 0 || !samples()) return;
    const x = localX(e);
    drag = { x0: x, x1: x };
    canvas.setPointerCapture(e.pointerId);
    root.focus({ preventScroll: true });
    e.preventDefault();
    redraw();
  }
  function onMove(e) {
    if (!drag) return;
    drag.x1 = localX(e);
    redraw();
  }
  function onUp(e) {
    if (!drag) return;
    drag.x1 = localX(e);
    const { x0, x1 } = drag;
    if (Math.abs(x1 - x0) < CLICK_PX) send({ type: "click", sample: Math.floor(toSample(x0)) });
    else send({ type: "select", start: Math.round(toSample(Math.min(x0, x1))),
      end: Math.round(toSample(Math.max(x0, x1))) });
    drag = null;  // the drawn selection now waits for Python's
    // JupyterLab's notebook may take the focus on mouseup: take it back
    setTimeout(() => root.focus({ preventScroll: true }), 0);
    redraw();
  }
  function onKey(e) {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    const mod = e.ctrlKey || e.metaKey;
    let msg = null;
    if (mod && !e.altKey && (e.key === "z" || e.key === "Z")) msg = { type: e.shiftKey ? "redo" : "undo" };
    else if (mod && (e.key === "y" || e.key === "Y")) msg = { type: "redo" };
    else if (!mod && !e.altKey && /^[1-9]$/.test(e.key)) msg = { type: "shortcut", key: e.key };
    else if (!mod && (e.key === "Backspace" || e.key === "Delete")) msg = { type: "delete" };
    else if (!mod && e.key === "Escape") msg = { type: "clear_selection" };
    if (!msg) return;
    e.preventDefault();
    e.stopPropagation();  // keep JupyterLab's own shortcuts (1 = heading, z = undo cell) out
    send(msg);
  }
  function onNewLabel(e) {
    if (e.key !== "Enter") return;
    e.preventDefault();
    e.stopPropagation();
    const text = newLabel.value.trim();
    if (!text) return;
    send({ type: "add_label", label: text });
    newLabel.value = "";
    root.focus({ preventScroll: true });
  }
  const stopKeys = (e) => e.stopPropagation();  // typing a label must not trigger notebook keys
  const onPick = () => send({ type: "open", rec_id: picker.value });
  const onRecLabel = () => send({ type: "label_recording", label: recLabel.value || null });
  const onUndo = () => send({ type: "undo" });
  const onRedo = () => send({ type: "redo" });
  const onDelete = () => send({ type: "delete" });
  const onSlide = () => {
    sliderTouched = true;
    const max = model.get("threshold_max") || 1;
    thresholdText.textContent = ((Number(slider.value) / SLIDER_STEPS) * max).toPrecision(3);
  };
  const onSlideDone = () => {
    const max = model.get("threshold_max") || 1;
    send({ type: "propose", threshold: (Number(slider.value) / SLIDER_STEPS) * max });
  };
  const onPropose = () => {
    const th = model.get("threshold");
    send({ type: "propose", threshold: sliderTouched && th !== null ? th : null });
  };
  const onAccept = () => send({ type: "accept", label: acceptLabel.value });
  const onClear = () => { sliderTouched = false; send({ type: "clear_proposals" }); };

  /** @param {TraceMessage|EnergyMessage} msg */
  function onMessage(msg, buffers) {
    if (!msg || typeof msg !== "object") return;
    const y = floats(buffers && buffers[0]);
    if (msg.type === "trace") trace = { msg, y };
    else if (msg.type === "energy") {
      const had = !!energy;
      energy = msg.n ? { msg, y } : null;
      if (had !== !!energy) resize();
    } else return;
    root.dataset.traceRec = trace ? trace.msg.rec_id : "";
    redraw();
  }

  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  root.addEventListener("keydown", onKey);
  newLabel.addEventListener("keydown", onNewLabel);
  newLabel.addEventListener("keydown", stopKeys);
  picker.addEventListener("change", onPick);
  recLabel.addEventListener("change", onRecLabel);
  undoBtn.addEventListener("click", onUndo);
  redoBtn.addEventListener("click", onRedo);
  deleteBtn.addEventListener("click", onDelete);
  slider.addEventListener("input", onSlide);
  slider.addEventListener("change", onSlideDone);
  proposeBtn.addEventListener("click", onPropose);
  acceptBtn.addEventListener("click", onAccept);
  clearBtn.addEventListener("click", onClear);
  model.on("msg:custom", onMessage);
  const traitEvents = {
    "change:recordings": syncPicker, "change:rec_id": syncAll,
    "change:labels": syncLabels, "change:colors": syncLabels, "change:shortcuts": syncLabels,
    "change:info": () => { syncLegend(); syncLabels(); redraw(); },
    "change:regions": () => { syncButtons(); redraw(); },
    "change:selection": () => { syncButtons(); redraw(); },
    "change:proposals": () => { syncButtons(); redraw(); },
    "change:threshold": () => { syncButtons(); redraw(); },
    "change:threshold_max": syncButtons,
    "change:can_undo": syncButtons, "change:can_redo": syncButtons,
    "change:can_propose": syncButtons, "change:status": syncStatus,
  };
  for (const [ev, fn] of Object.entries(traitEvents)) model.on(ev, fn);
  const observer = new ResizeObserver(resize);
  observer.observe(canvas);

  syncAll();
  resize();
  raf = requestAnimationFrame(frame);
  if (!lastWidth) send({ type: "hello", width: Math.round(plotW()) || 1000 });

  return () => {
    cancelAnimationFrame(raf);
    observer.disconnect();
    model.off("msg:custom", onMessage);
    for (const [ev, fn] of Object.entries(traitEvents)) model.off(ev, fn);
    root.remove();
  };
}

export default { render };
