// TakesList front end: the rows of workbench/ui/takes_list.py and a small player.
//
// It holds no logic of its own: the list is the `takes` trait; every button sends a
// message ({type: "play"|"relabel"|"delete"|"undo", ...}) that Python turns into a
// recorder call, and the list it then syncs is what is on disk. The player draws the
// take Python sends ({type: "take"} with one float32 buffer (n, channels)) and sweeps a
// playhead across it in real time.

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const THUMB_W = 120, THUMB_H = 30;
const PLAYER_H = 120;

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** "00:02.4" */
function clock(s) {
  const m = Math.floor(s / 60), r = s - 60 * m;
  return `${String(m).padStart(2, "0")}:${r.toFixed(1).padStart(4, "0")}`;
}

/** An SVG sparkline of each channel (values per channel; null is a gap). */
function thumbnail(thumb) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "wb-takes-thumb");
  svg.setAttribute("width", THUMB_W);
  svg.setAttribute("height", THUMB_H);
  svg.setAttribute("viewBox", `0 0 ${THUMB_W} ${THUMB_H}`);
  let lo = Infinity, hi = -Infinity, n = 0;
  for (const col of thumb) {
    n = Math.max(n, col.length);
    for (const v of col) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  if (!(hi >= lo) || n < 2) return svg;
  const span = hi - lo || 1;
  thumb.forEach((col, c) => {
    let d = "", pen = false;
    col.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = (i / (n - 1)) * (THUMB_W - 2) + 1;
      const y = THUMB_H - 2 - ((v - lo) / span) * (THUMB_H - 4);
      d += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      pen = true;
    });
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", COLORS[c % COLORS.length]);
    path.setAttribute("stroke-width", "1");
    svg.append(path);
  });
  return svg;
}

function floats(buf) {
  if (buf instanceof ArrayBuffer) return new Float32Array(buf);
  const { buffer, byteOffset, byteLength } = buf;
  if (byteOffset % 4 === 0) return new Float32Array(buffer, byteOffset, byteLength / 4);
  return new Float32Array(buffer.slice(byteOffset, byteOffset + byteLength));
}

function render({ model, el }) {
  el.classList.add("wb-takes");
  const root = h("div", "wb-takes-root");
  root.style.cssText = "font-family:var(--jp-ui-font-family, sans-serif);font-size:13px;" +
    "color:var(--jp-ui-font-color1, #222);max-width:960px;";
  const head = h("div", "wb-takes-head");
  head.style.cssText = "display:flex;align-items:center;gap:10px;margin:6px 0;";
  const title = h("b", "wb-takes-title");
  const note = h("span", "wb-takes-note");
  note.style.cssText = "flex:1;opacity:0.8;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;";
  const undoBtn = h("button", "wb-takes-undo", "↶ Undo");
  head.append(title, note, undoBtn);

  const player = h("div", "wb-takes-player");
  player.style.cssText = "display:none;border:1px solid var(--jp-border-color2, #ddd);" +
    "border-radius:4px;padding:4px 6px;margin-bottom:6px;";
  const playerHead = h("div");
  playerHead.style.cssText = "display:flex;gap:8px;align-items:center;";
  const playerTitle = h("span", "wb-takes-player-title");
  playerTitle.style.cssText = "font-weight:600;flex:1;";
  const playerTime = h("span", "wb-takes-player-time");
  playerTime.style.cssText = "font-variant-numeric:tabular-nums;";
  const closeBtn = h("button", "wb-takes-player-close", "✕");
  closeBtn.title = "Close the player";
  playerHead.append(playerTitle, playerTime, closeBtn);
  const canvas = h("canvas");
  canvas.style.cssText = `display:block;width:100%;height:${PLAYER_H}px;`;
  player.append(playerHead, canvas);

  const list = h("div", "wb-takes-rows");
  list.style.cssText = "display:flex;flex-direction:column;gap:2px;max-height:360px;overflow-y:auto;";
  const datalist = h("datalist");
  datalist.id = `wb-takes-labels-${Math.random().toString(36).slice(2)}`;
  root.append(head, player, list, datalist);
  el.append(root);

  let take = null;        // {msg, values}
  let playStart = 0, raf = 0;

  function send(msg) { model.send(msg); }

  function syncHead() {
    const takes = model.get("takes") || [];
    const total = model.get("total") || 0;
    title.textContent = total > takes.length ? `Takes (newest ${takes.length} of ${total})`
      : `Takes (${total})`;
    const err = model.get("error");
    note.textContent = err || model.get("message") || "";
    note.style.color = err ? "#b00" : "";
    note.classList.toggle("wb-takes-error", !!err);
    undoBtn.disabled = !model.get("can_undo");
    undoBtn.title = model.get("undo_text") ? `Undo: ${model.get("undo_text")}` : "Nothing to undo";
    datalist.replaceChildren(...(model.get("labels") || []).map((l) => {
      const o = h("option"); o.value = l; return o;
    }));
  }

  function startRelabel(item, labelEl) {
    const input = h("input", "wb-takes-input");
    input.setAttribute("list", datalist.id);
    input.value = item.label || "";
    input.placeholder = "label";
    input.style.cssText = "width:120px;";
    let done = false;
    const finish = (save) => {
      if (done) return;
      done = true;
      if (save && input.value.trim() !== (item.label || "")) {
        send({ type: "relabel", rec_id: item.id, label: input.value.trim() });
      } else {
        input.replaceWith(labelEl);
      }
    };
    input.addEventListener("keydown", (e) => {
      e.stopPropagation();  // keep JupyterLab's shortcuts out of the text box
      if (e.key === "Enter") finish(true);
      if (e.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(false));
    labelEl.replaceWith(input);
    input.focus();
    input.select();
  }

  function row(item) {
    const r = h("div", "wb-takes-row");
    r.dataset.id = item.id;
    r.style.cssText = "display:flex;align-items:center;gap:10px;padding:2px 4px;" +
      "border-bottom:1px solid var(--jp-border-color3, #eee);";
    if (model.get("playing") === item.id) r.style.background = "var(--jp-layout-color2, #f3f3f3)";
    const lab = h("span", "wb-takes-label", item.label || "unlabeled");
    lab.style.cssText = "min-width:120px;font-weight:600;" +
      (item.label ? "" : "color:#b36b00;font-style:italic;");
    lab.title = item.label ? item.id : `${item.id}: no label; press Relabel to give it one`;
    const len = h("span", "wb-takes-length", `${item.seconds.toFixed(1)} s`);
    len.style.cssText = "min-width:52px;text-align:right;font-variant-numeric:tabular-nums;";
    const sensor = h("span", "wb-takes-sensor", item.sensor);
    sensor.style.cssText = "min-width:56px;opacity:0.8;";
    const when = h("span", "wb-takes-time",
      item.started ? new Date(item.started).toLocaleTimeString() : item.time);
    when.style.cssText = "min-width:80px;opacity:0.8;font-variant-numeric:tabular-nums;";
    when.title = item.started;
    const extra = h("span", "wb-takes-extra",
      (item.lost ? `${item.lost} lost ` : "") + (item.interrupted ? "interrupted" : ""));
    extra.style.cssText = "color:#b36b00;flex:1;";
    const play = h("button", "wb-takes-play", "▶ Play");
    play.title = "Play back";
    const relabel = h("button", "wb-takes-relabel", "✎ Relabel");
    relabel.title = "Relabel";
    const del = h("button", "wb-takes-delete", "✕ Delete");
    del.title = "Delete (kept in the dataset's trash/; Undo brings it back)";
    play.addEventListener("click", () => send({ type: "play", rec_id: item.id }));
    relabel.addEventListener("click", () => startRelabel(item, lab));
    del.addEventListener("click", () => send({ type: "delete", rec_id: item.id }));
    r.append(thumbnail(item.thumb || []), lab, len, sensor, when, extra, play, relabel, del);
    return r;
  }

  function syncRows() {
    const takes = model.get("takes") || [];
    if (!takes.length) {
      const empty = h("div", "wb-takes-empty", "No takes yet: press Record.");
      empty.style.cssText = "opacity:0.7;padding:4px;";
      list.replaceChildren(empty);
    } else {
      list.replaceChildren(...takes.map(row));
    }
    syncHead();
  }

  function drawPlayer() {
    if (!take) return;
    const { msg, values } = take;
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width)), ht = PLAYER_H;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(ht * dpr)) canvas.height = Math.round(ht * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const style = getComputedStyle(el);
    ctx.fillStyle = style.getPropertyValue("--jp-layout-color0").trim() || "#fff";
    ctx.fillRect(0, 0, w, ht);
    const n = msg.n, nch = msg.channels;
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!(hi >= lo)) { lo = -1; hi = 1; }
    const span = hi - lo || 1;
    const x = (i) => 2 + (i / Math.max(1, n - 1)) * (w - 4);
    const y = (v) => ht - 4 - ((v - lo) / span) * (ht - 8);
    ctx.lineWidth = 1 / dpr;
    for (let c = 0; c < nch; c++) {
      ctx.strokeStyle = COLORS[c % COLORS.length];
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < n; i++) {
        const v = values[i * nch + c];
        if (!isFinite(v)) { pen = false; continue; }
        if (pen) ctx.lineTo(x(i), y(v)); else { ctx.moveTo(x(i), y(v)); pen = true; }
      }
      ctx.stroke();
    }
    const seconds = msg.seconds || 0;
    const t = Math.min(seconds, (performance.now() - playStart) / 1000);
    const frac = seconds ? t / seconds : 1;
    const px = 2 + frac * (w - 4);
    ctx.strokeStyle = "#d00";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(px, 0);
    ctx.lineTo(px, ht);
    ctx.stroke();
    playerTime.textContent = `${clock(t)} / ${clock(seconds)}`;
    player.dataset.progress = frac.toFixed(3);
    return frac < 1;
  }

  function animate() {
    cancelAnimationFrame(raf);
    const step = () => { if (drawPlayer()) raf = requestAnimationFrame(step); };
    raf = requestAnimationFrame(step);
  }

  function onMessage(msg, buffers) {
    if (!msg || msg.type !== "take") return;
    take = { msg, values: buffers && buffers.length ? floats(buffers[0]) : new Float32Array(0) };
    player.style.display = "";
    player.dataset.id = msg.rec_id;
    playerTitle.textContent = `▶ ${msg.label || "unlabeled"} · ${msg.names.join(", ")}` +
      (msg.units ? ` (${msg.units})` : "");
    playStart = performance.now();
    animate();
  }

  const onClose = () => {
    cancelAnimationFrame(raf);
    take = null;
    player.style.display = "none";
    delete player.dataset.id;
  };
  const onUndo = () => send({ type: "undo" });
  closeBtn.addEventListener("click", onClose);
  undoBtn.addEventListener("click", onUndo);
  model.on("msg:custom", onMessage);
  const rowTraits = ["change:takes", "change:playing"];
  const headTraits = ["change:message", "change:error", "change:can_undo", "change:undo_text",
    "change:labels", "change:total"];
  for (const ev of rowTraits) model.on(ev, syncRows);
  for (const ev of headTraits) model.on(ev, syncHead);
  syncRows();

  return () => {
    cancelAnimationFrame(raf);
    closeBtn.removeEventListener("click", onClose);
    undoBtn.removeEventListener("click", onUndo);
    model.off("msg:custom", onMessage);
    for (const ev of rowTraits) model.off(ev, syncRows);
    for (const ev of headTraits) model.off(ev, syncHead);
    root.remove();
    el.classList.remove("wb-takes");
  };
}

export default { render };
