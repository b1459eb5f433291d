// Web Serial bridge front end (workbench/ui/webserial.py): the browser's serial port, relayed
// to the kernel as binary buffers.
//
// One Bridge per widget model holds the port (made in initialize, closed when the model goes
// away); every view of the model is a Connect button, a baud selector and a status line.
// Bytes read from the port are queued in order with the port's state changes; at most
// `window` messages of bytes are unacknowledged at a time, and what arrives meanwhile is
// gathered into the next message (so a kernel busy in a cell gets one large message).

/** The bridges, by widget manager, then channel id. anywidget hands `initialize` and each
 * view a different proxy of the same model, so the proxy cannot be the key: keyed by it, a
 * view made a second Bridge, and both opened the port.
 * @type {WeakMap<object, Map<string, Bridge>>} */
const bridges = new WeakMap();
const NO_MANAGER = {};

function bridgesOf(model) {
  const manager = model.widget_manager || NO_MANAGER;
  let found = bridges.get(manager);
  if (!found) {
    found = new Map();
    bridges.set(manager, found);
  }
  return found;
}

/** Largest message of port bytes, in bytes. */
const MAX_MESSAGE = 1 << 20;
/** Read errors after which the port still works (Web Serial spec); others end the port. */
const RECOVERABLE = ["BreakError", "FramingError", "ParityError", "BufferOverrunError"];

const TEXT = {
  waiting: () => "Not connected: click Connect and choose the board's port.",
  open: (b) => `Connected: ${b.label()} at ${b.baud} baud, as ${b.url()}`,
  cancelled: () => "No port chosen (the picker was closed). Click Connect to try again.",
  unsupported: (b) => `No Web Serial here: ${b.reason}`,
  failed: (b) => `Could not open the port: ${b.reason}. Close other programs or tabs using ` +
    "it (a serial monitor, the Arduino IDE), then click Connect again.",
  unplugged: (b) => `The board was unplugged (${b.reason}). Everything it sent before reached ` +
    "the kernel. Plug it back in and click Connect.",
  closed: (b) => `Disconnected${b.reason ? ` (${b.reason})` : ""}. Click Connect to reconnect.`,
};

/** Why this page cannot use Web Serial, or null. */
function supportProblem() {
  if (!window.isSecureContext) {
    return `this page (${location.origin}) is not a secure context, and Web Serial is ` +
      "offered only to pages from https:// or localhost: open the notebook over HTTPS or " +
      "through an SSH tunnel to localhost.";
  }
  if (!("serial" in navigator) || !navigator.serial) {
    return "this browser has no Web Serial (navigator.serial is missing). Use Chrome, Edge " +
      "or Opera (89 or later) on a desktop; Firefox and Safari lack it.";
  }
  return null;
}

/** Uint8Array over a buffer from the kernel (DataView, ArrayBuffer or typed array). */
function bytesOf(buf) {
  if (buf instanceof ArrayBuffer) return new Uint8Array(buf);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function concat(chunks, total) {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

class Bridge {
  constructor(model) {
    this.model = model;
    this.state = "waiting";
    this.reason = "";
    this.info = {};
    this.baud = model.get("baudrate");
    this.port = null;
    this.reader = null;
    this.outbox = []; // {kind: "rx", chunks, bytes} | {kind: "state", msg}, in order
    this.inflight = 0;
    this.seq = 0;
    this.rx = 0; // bytes read from the port
    this.tx = 0; // bytes written to it
    this.buffered = 0; // bytes read and not yet sent to the kernel
    this.views = new Set();
    this.writes = Promise.resolve();
    this.onKernel = this.onKernel.bind(this);
    this.onDisconnect = this.onDisconnect.bind(this);
    model.on("msg:custom", this.onKernel);
    model.on("change:baudrate", () => {
      if (this.port && this.baud !== model.get("baudrate")) this.reopen();
    });
    const problem = supportProblem();
    if (problem) {
      this.setState("unsupported", problem);
    } else {
      navigator.serial.addEventListener("disconnect", this.onDisconnect);
      if (model.get("autoconnect")) this.reopenGranted();
    }
  }

  url() {
    return `webserial://${this.model.get("channel_id")}`;
  }

  label() {
    const fromKernel = this.model.get("port_label");
    if (fromKernel) return fromKernel;
    const { usbVendorId: v, usbProductId: p } = this.info || {};
    const hex = (n) => n.toString(16).toUpperCase().padStart(4, "0");
    return v !== undefined && p !== undefined ? `${hex(v)}:${hex(p)}` : "serial port";
  }

  // ------------------------------------------------------------------ state, to the kernel
  setState(state, reason = "") {
    this.state = state;
    this.reason = reason;
    const msg = { type: "state", state, reason, baudrate: this.baud, info: this.info };
    this.outbox.push({ kind: "state", msg });
    this.flush();
  }

  queueBytes(value) {
    this.rx += value.byteLength;
    this.buffered += value.byteLength;
    const last = this.outbox[this.outbox.length - 1];
    if (last && last.kind === "rx" && last.bytes + value.byteLength <= MAX_MESSAGE) {
      last.chunks.push(value);
      last.bytes += value.byteLength;
    } else {
      this.outbox.push({ kind: "rx", chunks: [value], bytes: value.byteLength });
    }
    this.flush();
  }

  /** Send what the window allows, in order (a state change waits behind earlier bytes). */
  flush() {
    const window = Math.max(1, this.model.get("window") || 4);
    while (this.outbox.length) {
      const head = this.outbox[0];
      if (head.kind === "state") {
        this.outbox.shift();
        this.model.send(head.msg);
        continue;
      }
      if (this.inflight >= window) break;
      this.outbox.shift();
      const data = concat(head.chunks, head.bytes);
      this.inflight += 1;
      this.seq += 1;
      this.buffered -= head.bytes;
      this.model.send({ type: "rx", seq: this.seq }, undefined, [data.buffer]);
    }
    this.render();
  }

  // ------------------------------------------------------------------ the port
  async grantedPort() {
    const ports = await navigator.serial.getPorts();
    return ports.length ? ports[0] : null;
  }

  async reopenGranted() {
    try {
      const port = await this.grantedPort();
      if (port && !this.port) await this.open(port);
    } catch (e) {
      console.warn("webserial: could not reopen the granted port", e);
    }
  }

  /** Connect button: a port granted before, else the picker (catalog filters unless `any`). */
  async connect(any = false) {
    const problem = supportProblem();
    if (problem) return this.setState("unsupported", problem);
    let port;
    try {
      port = any ? null : await this.grantedPort();
      if (!port) {
        const filters = any ? [] : this.model.get("filters") || [];
        port = await navigator.serial.requestPort(filters.length ? { filters } : {});
      }
    } catch (e) {
      if (e && e.name === "NotFoundError") return this.setState("cancelled", e.message || "");
      if (e && e.name === "SecurityError") {
        return this.setState("unsupported", `the browser refused access (${e.message}); ` +
          "Web Serial needs a page from https:// or localhost, outside a sandboxed frame.");
      }
      return this.setState("failed", `${e && e.name}: ${e && e.message}`);
    }
    await this.open(port);
  }

  async open(port) {
    this.baud = this.model.get("baudrate");
    try {
      await port.open({ baudRate: this.baud, bufferSize: 1 << 16 });
    } catch (e) {
      return this.setState("failed", `${e.name}: ${e.message}`);
    }
    this.port = port;
    this.info = port.getInfo ? port.getInfo() : {};
    this.setState("open");
    this.readLoop(port);
  }

  async readLoop(port) {
    while (port === this.port && port.readable) {
      const reader = port.readable.getReader();
      this.reader = reader;
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (value && value.byteLength) this.queueBytes(value);
        }
      } catch (e) {
        reader.releaseLock();
        if (RECOVERABLE.includes(e.name)) continue;
        if (port === this.port) this.lost(`${e.name}: ${e.message}`);
        return;
      }
      reader.releaseLock();
      if (port === this.port && !port.readable) this.lost("the port stopped delivering bytes");
      return;
    }
  }

  onDisconnect(event) {
    if (this.port && (event.target === this.port || event.port === this.port)) {
      this.lost("the USB device went away");
    }
  }

  lost(reason) {
    const port = this.port;
    this.port = null;
    this.reader = null;
    if (port) port.close().catch(() => {});
    this.setState("unplugged", reason);
  }

  async disconnect(reason = "") {
    const port = this.port;
    this.port = null;
    try {
      if (this.reader) await this.reader.cancel();
    } catch (e) {
      /* a reader of a gone port */
    }
    this.reader = null;
    try {
      await this.writes;
      if (port) await port.close();
    } catch (e) {
      /* closing a gone port */
    }
    if (port) this.setState("closed", reason);
  }

  async reopen() {
    const port = this.port;
    await this.disconnect(`reopening at ${this.model.get("baudrate")} baud`);
    if (port) await this.open(port);
  }

  write(bytes) {
    this.writes = this.writes.then(async () => {
      const port = this.port;
      if (!port || !port.writable) return;
      const writer = port.writable.getWriter();
      try {
        await writer.write(bytes);
        this.tx += bytes.byteLength;
      } finally {
        writer.releaseLock();
      }
    }).catch((e) => console.warn("webserial: write failed", e));
  }

  // ------------------------------------------------------------------ from the kernel
  onKernel(msg, buffers) {
    if (msg.type === "ack") {
      this.inflight = Math.max(0, this.inflight - 1);
      this.flush();
    } else if (msg.type === "tx" && buffers && buffers.length) {
      this.write(new Uint8Array(bytesOf(buffers[0]))); // a copy: the buffer may be reused
    } else if (msg.type === "signals" && this.port && this.port.setSignals) {
      const s = {};
      if ("dtr" in msg) s.dataTerminalReady = msg.dtr;
      if ("rts" in msg) s.requestToSend = msg.rts;
      if ("brk" in msg) s.break = msg.brk;
      this.port.setSignals(s).catch((e) => console.warn("webserial: setSignals", e));
    } else if (msg.type === "disconnect") {
      this.disconnect("closed from the kernel");
    }
  }

  dispose() {
    this.model.off("msg:custom", this.onKernel);
    if (navigator.serial) navigator.serial.removeEventListener("disconnect", this.onDisconnect);
    this.disconnect("the widget was closed");
  }

  render() {
    for (const view of this.views) view();
  }
}

function initialize({ model }) {
  const bridge = new Bridge(model);
  const all = bridgesOf(model);
  const id = model.get("channel_id");
  all.set(id, bridge);
  return () => {
    if (all.get(id) === bridge) all.delete(id);
    bridge.dispose();
  };
}

function render({ model, el }) {
  const all = bridgesOf(model);
  let bridge = all.get(model.get("channel_id"));
  if (!bridge) {
    // an anywidget without initialize support: make the bridge with the first view
    bridge = new Bridge(model);
    all.set(model.get("channel_id"), bridge);
  }
  el.classList.add("wb-webserial");
  el.innerHTML = `
    <div class="wb-ws-row" style="display:flex;gap:8px;align-items:center;flex-wrap:wrap;
         font:13px var(--jp-ui-font-family, sans-serif)">
      <span class="wb-ws-dot" style="width:10px;height:10px;border-radius:50%;
            display:inline-block;background:#9e9e9e"></span>
      <button class="wb-ws-connect jupyter-button" type="button">Connect</button>
      <button class="wb-ws-other jupyter-button" type="button"
              title="Choose any serial port, also one whose USB ids the catalog does not know">
        Other port…</button>
      <label>Baud <select class="wb-ws-baud"></select></label>
      <span class="wb-ws-counters" style="color:var(--jp-ui-font-color2,#666)"></span>
    </div>
    <div class="wb-ws-status" role="status" style="margin-top:4px;
         font:13px var(--jp-ui-font-family, sans-serif)"></div>`;
  const dot = el.querySelector(".wb-ws-dot");
  const connect = el.querySelector(".wb-ws-connect");
  const other = el.querySelector(".wb-ws-other");
  const baud = el.querySelector(".wb-ws-baud");
  const status = el.querySelector(".wb-ws-status");
  const counters = el.querySelector(".wb-ws-counters");
  const COLORS = { open: "#2e7d32", waiting: "#9e9e9e", closed: "#9e9e9e", cancelled: "#f9a825" };

  function fillBauds() {
    const rates = model.get("baudrates") || [];
    const current = model.get("baudrate");
    const all = rates.includes(current) ? rates : [...rates, current];
    baud.innerHTML = all.map((r) => `<option value="${r}">${r}</option>`).join("");
    baud.value = String(current);
  }

  function update() {
    const s = bridge.state;
    el.dataset.state = s;
    el.dataset.rx = String(bridge.rx);
    el.dataset.tx = String(bridge.tx);
    el.dataset.buffered = String(bridge.buffered);
    el.dataset.inflight = String(bridge.inflight);
    dot.style.background = COLORS[s] || "#c62828";
    connect.textContent = s === "open" ? "Disconnect" : "Connect";
    connect.disabled = s === "unsupported";
    other.disabled = s === "unsupported" || s === "open";
    status.textContent = (TEXT[s] || (() => s))(bridge);
    counters.textContent = s === "open" || bridge.rx ?
      `${bridge.rx.toLocaleString()} B in, ${bridge.tx.toLocaleString()} B out` : "";
  }

  connect.addEventListener("click", () => {
    if (bridge.state === "open") bridge.disconnect("disconnected in the page");
    else bridge.connect(false);
  });
  other.addEventListener("click", () => bridge.connect(true));
  baud.addEventListener("change", () => {
    model.set("baudrate", Number(baud.value));
    model.save_changes();
  });
  const onBaud = () => fillBauds();
  model.on("change:baudrate", onBaud);
  model.on("change:baudrates", onBaud);
  model.on("change:port_label", update);
  fillBauds();
  bridge.views.add(update);
  update();
  // counters of a busy port are redrawn at most every 200 ms
  const timer = setInterval(update, 200);
  return () => {
    clearInterval(timer);
    bridge.views.delete(update);
    model.off("change:baudrate", onBaud);
    model.off("change:baudrates", onBaud);
    model.off("change:port_label", update);
  };
}

export default { initialize, render };
