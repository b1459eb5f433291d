/**
 * The left-sidebar "TinyML" panel: devices (serial ports and virtual boards the server sees,
 * and the Web Serial ports this browser granted), lessons, datasets and the model registry.
 *
 * It holds no logic of its own: every list comes from the server extension (requestAPI),
 * every action is a command (CommandIDs), so the palette and the panel do the same thing.
 * The devices are read again every REFRESH_MS while the panel is shown, and on Refresh.
 * An error stays on the panel's status line until the next action.
 */
import { CommandRegistry } from '@lumino/commands';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import {
  ICatalogBoard,
  IDataset,
  IDevice,
  ILesson,
  IRegistry,
  ISelectedModel,
  IWebSerialPort
} from './api';
import { CommandIDs } from './commands';
import { requestAPI } from './request';
import { ITinyMLWorkbench } from './tokens';

/** How often the devices are listed again while the panel is shown. */
export const REFRESH_MS = 5000;

type Child = Node | string | null | undefined | false;

function h(tag: string, attrs: { [key: string]: string } = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    el.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

function bytes(n: number): string {
  if (n >= 1024 * 1024) {
    return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) ? 1 : 0)} MB`;
  }
  return `${Math.round(n / 1024)} KB`;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** What a device is called in the panel and in the connect menu. */
export function deviceName(dev: IDevice): string {
  if (dev.board) {
    return dev.board.name;
  }
  const described = dev.description && dev.description !== 'n/a' ? dev.description : '';
  return described || (dev.usb ? 'USB serial port' : 'Serial port');
}

/** What a granted Web Serial port is called in the panel and in the connect menu. */
export function webSerialName(port: IWebSerialPort): string {
  return port.board ? port.board.name : port.usb ? `USB serial port ${port.usb}` : 'Serial port';
}

export class TinyMLPanel extends Widget implements ITinyMLWorkbench {
  constructor(commands: CommandRegistry) {
    super();
    this._commands = commands;
    this.id = 'tinyml-workbench-panel';
    this.addClass('jp-TinyMLPanel');
    this.title.caption = 'TinyML';
    this.node.tabIndex = 0;
  }

  get devices(): ReadonlyArray<IDevice> {
    return this._devices;
  }
  get boards(): ReadonlyArray<ICatalogBoard> {
    return this._boards;
  }
  get lessons(): ReadonlyArray<ILesson> {
    return this._lessons;
  }
  get selectedDevice(): string | null {
    return this._selectedDevice;
  }
  get selectedModel(): ISelectedModel | null {
    return this._selectedModel;
  }
  /** The ports this browser granted to the page, or null when it has no Web Serial. */
  get webSerialPorts(): ReadonlyArray<IWebSerialPort> | null {
    if (this._webSerial === null) {
      return null;
    }
    // matched when asked: the catalog may arrive after the ports
    return this._webSerial.map(usb => {
      const matches = usb ? this._boards.filter(b => (b.usb ?? []).includes(usb)) : [];
      return { usb, matches, board: matches.length === 1 ? matches[0] : null };
    });
  }
  /** The board the "Start virtual board" menu names (a catalog id). */
  get boardToStart(): string {
    return this._boardToStart;
  }
  get changed(): ISignal<ITinyMLWorkbench, void> {
    return this._changed;
  }

  /** Show an error (or null to clear it) on the status line; it stays until the next action. */
  setError(message: string | null): void {
    this._error = message;
    this._render();
  }

  /** Run a command from the panel: clears the last error, shows the new one if it fails. */
  async run(id: string, args: any = {}): Promise<void> {
    this.setError(null);
    try {
      await this._commands.execute(id, args);
    } catch (error) {
      this.setError((error as Error).message ?? String(error));
    }
  }

  selectDevice(url: string | null): void {
    this._selectedDevice = url;
    this._render();
    this._changed.emit();
  }

  selectModel(model: ISelectedModel | null): void {
    this._selectedModel = model;
    this._render();
    this._changed.emit();
  }

  async refresh(all = false): Promise<void> {
    try {
      const jobs: Promise<void>[] = [this._readDevices(), this._readWebSerial()];
      if (all || !this._loaded) {
        jobs.push(this._readRest());
      }
      await Promise.all(jobs);
      this._loaded = true;
      this._stale = null;
    } catch (error) {
      this._stale = `could not read the listings: ${(error as Error).message ?? error}`;
    }
    this._render();
    this._changed.emit();
  }

  protected onAfterShow(): void {
    void this.refresh(!this._loaded);
    this._startTimer();
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      void this.refresh(true);
      this._startTimer();
    }
  }

  protected onBeforeHide(): void {
    this._stopTimer();
  }

  protected onBeforeDetach(): void {
    this._stopTimer();
  }

  dispose(): void {
    this._stopTimer();
    super.dispose();
  }

  private _startTimer(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
    }
  }

  private _stopTimer(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private async _readDevices(): Promise<void> {
    const answer = await requestAPI<{ devices: IDevice[] }>('devices');
    this._devices = answer.devices;
    if (this._selectedDevice && !this._devices.some(d => d.url === this._selectedDevice)) {
      this._selectedDevice = null;
    }
  }

  private async _readRest(): Promise<void> {
    const [boards, lessons, datasets, registry] = await Promise.all([
      requestAPI<{ boards: ICatalogBoard[] }>('boards'),
      requestAPI<{ lessons: ILesson[] }>('lessons'),
      requestAPI<{ datasets: IDataset[] }>('datasets'),
      requestAPI<{ registries: IRegistry[] }>('registry')
    ]);
    this._boards = boards.boards;
    this._lessons = lessons.lessons;
    this._datasets = datasets.datasets;
    this._registries = registry.registries;
  }

  private async _readWebSerial(): Promise<void> {
    const serial = (navigator as any).serial;
    if (!serial || typeof serial.getPorts !== 'function') {
      this._webSerial = null;
      return;
    }
    const ports: any[] = await serial.getPorts();
    this._webSerial = ports.map(port => {
      const info = port.getInfo ? port.getInfo() : {};
      return info.usbVendorId !== undefined && info.usbProductId !== undefined
        ? `${hex4(info.usbVendorId)}:${hex4(info.usbProductId)}` : '';
    });
  }

  private _render(): void {
    const node = this.node;
    const scroll = node.scrollTop;
    node.replaceChildren(
      h('div', { class: 'jp-TinyMLPanel-header' },
        h('h2', {}, 'TinyML'),
        this._button('Refresh', 'Read the devices, lessons, datasets and models again', () =>
          this.run(CommandIDs.refresh)
        )
      ),
      h('div', { class: 'jp-TinyMLPanel-status', role: 'status' },
        this._error ? h('span', { class: 'jp-TinyMLPanel-error' }, this._error) : null,
        this._stale ? h('span', { class: 'jp-TinyMLPanel-error' }, this._stale) : null
      ),
      this._devicesSection(),
      this._lessonsSection(),
      this._datasetsSection(),
      this._modelsSection()
    );
    node.scrollTop = scroll;
  }

  private _button(label: string, title: string, onClick: () => void, cls = ''): HTMLElement {
    const button = h('button', {
      class: `jp-Button jp-mod-styled jp-mod-reject jp-TinyMLPanel-button ${cls}`,
      title
    }, label);
    button.addEventListener('click', event => {
      event.stopPropagation();
      onClick();
    });
    return button;
  }

  private _devicesSection(): HTMLElement {
    const rows = this._devices.map(dev => this._deviceRow(dev));
    const menu = h('select', { class: 'jp-TinyMLPanel-boardMenu', title: 'The board to start' });
    for (const board of this._boards) {
      const option = h('option', { value: board.id }, board.name) as HTMLOptionElement;
      option.selected = board.id === this._boardToStart;
      menu.append(option);
    }
    menu.addEventListener('change', () => {
      this._boardToStart = (menu as HTMLSelectElement).value;
    });
    return h('section', { class: 'jp-TinyMLPanel-devices' },
      h('h3', {}, 'Devices'),
      rows.length ? h('ul', {}, ...rows) : h('p', { class: 'jp-TinyMLPanel-empty' },
        'No serial port or virtual board. Plug a board in, or start a virtual one.'),
      h('div', { class: 'jp-TinyMLPanel-actions' },
        menu,
        this._button('Start virtual board', 'Start a virtual board of the chosen kind on the server', () =>
          this.run(CommandIDs.startVirtualBoard, { board: this._boardToStart })
        )
      ),
      this._webSerialPart()
    );
  }

  private _deviceRow(dev: IDevice): HTMLElement {
    const board = dev.board;
    const name = deviceName(dev);
    const state = dev.kind === 'virtual'
      ? (dev.state.in_use ? 'running, in use' : 'running, free')
      : (dev.state.in_use === null ? 'plugged in' : dev.state.in_use ? 'plugged in, in use' : 'plugged in, free');
    const caps = board
      ? h('div', { class: 'jp-TinyMLPanel-caps' },
          `${board.mcu} · flash ${bytes(board.flash_bytes)} · RAM ${bytes(board.ram_bytes)}`,
          h('br'),
          board.sensors.length ? `sensors: ${board.sensors.map(s => s.id).join(', ')}` : 'no sensors')
      : h('div', { class: 'jp-TinyMLPanel-caps' },
          dev.catalog_matches.length > 1
            ? `could be: ${dev.catalog_matches.join(', ')}`
            : dev.usb ? `USB ${dev.usb}: not in the board catalog` : 'not a USB port');
    const selected = this._selectedDevice === dev.url;
    const row = h('li', {
      class: `jp-TinyMLPanel-device${selected ? ' jp-mod-selected' : ''}`,
      'data-url': dev.url,
      'data-kind': dev.kind,
      title: `${dev.url} (click to select)`
    },
      h('div', { class: 'jp-TinyMLPanel-name' },
        h('span', { class: `jp-TinyMLPanel-dot${dev.state.in_use ? ' jp-mod-busy' : ''}` }),
        name,
        h('span', { class: 'jp-TinyMLPanel-kind' }, dev.kind === 'virtual' ? ' virtual' : '')),
      h('div', { class: 'jp-TinyMLPanel-url' }, dev.url),
      h('div', { class: 'jp-TinyMLPanel-state' }, state),
      caps,
      h('div', { class: 'jp-TinyMLPanel-actions' },
        this._button('Connect', 'Open this device in a new notebook', () =>
          this.run(CommandIDs.connect, { url: dev.url })
        ),
        this._button('Capture', 'A new capture notebook on this device', () =>
          this.run(CommandIDs.newCaptureNotebook, { url: dev.url })
        ),
        dev.kind === 'virtual' && dev.pid !== null
          ? this._button('Stop', 'Stop this virtual board', () =>
              this.run(CommandIDs.stopVirtualBoard, { pid: dev.pid })
            )
          : null
      )
    );
    row.addEventListener('click', () => this.selectDevice(selected ? null : dev.url));
    return row;
  }

  private _webSerialPart(): HTMLElement {
    if (this._webSerial === null) {
      return h('p', { class: 'jp-TinyMLPanel-webserial jp-TinyMLPanel-empty' },
        'Web Serial: this browser has none (use Chrome or Edge, on localhost or HTTPS) — ' +
        'boards plugged into this computer cannot be reached from the browser.');
    }
    if (this._webSerial.length === 0) {
      return h('p', { class: 'jp-TinyMLPanel-webserial jp-TinyMLPanel-empty' },
        'Web Serial: no port granted to this page yet; the Web Serial bridge in a notebook asks for one.');
    }
    const items = (this.webSerialPorts ?? []).map(port => {
      const board = port.board;
      return h('li', { class: 'jp-TinyMLPanel-device', 'data-kind': 'webserial', 'data-usb': port.usb },
        h('div', { class: 'jp-TinyMLPanel-name' }, webSerialName(port)),
        h('div', { class: 'jp-TinyMLPanel-url' }, `Web Serial${port.usb ? `, USB ${port.usb}` : ''}`),
        h('div', { class: 'jp-TinyMLPanel-state' }, 'granted in this browser'),
        h('div', { class: 'jp-TinyMLPanel-caps' }, board
          ? `catalog: ${board.id}`
          : port.matches.length ? `could be: ${port.matches.map(b => b.id).join(', ')}`
            : port.usb ? `USB ${port.usb}: not in the board catalog` : 'not a USB port'),
        h('div', { class: 'jp-TinyMLPanel-actions' },
          this._button('Connect', 'A notebook that opens this port through the Web Serial bridge', () =>
            this.run(CommandIDs.connect, { webserial: true, board: board ? board.id : '' })
          )));
    });
    return h('div', { class: 'jp-TinyMLPanel-webserial' }, h('h4', {}, 'Web Serial (this browser)'),
      h('ul', {}, ...items));
  }

  private _lessonsSection(): HTMLElement {
    const items = this._lessons.map(lesson => {
      const item = h('li', { class: 'jp-TinyMLPanel-lesson', 'data-name': lesson.name,
        title: `Open ${lesson.name}` }, lesson.title);
      item.addEventListener('click', () => this.run(CommandIDs.openLesson, { name: lesson.name }));
      return item;
    });
    return h('section', { class: 'jp-TinyMLPanel-lessons' }, h('h3', {}, 'Lessons'),
      items.length ? h('ul', {}, ...items) : h('p', { class: 'jp-TinyMLPanel-empty' }, 'No lessons found.'));
  }

  private _datasetsSection(): HTMLElement {
    const items = this._datasets.map(ds => {
      const labels = ds.labels ? Object.entries(ds.labels).map(([l, n]) => `${l} ${n}`).join(', ') : '';
      const text = ds.error
        ? `cannot open: ${ds.error}`
        : `${ds.recordings} recording(s), ${(ds.seconds ?? 0).toFixed(1)} s` +
          (labels ? ` · ${labels}` : '') + (ds.unlabelled ? ` · ${ds.unlabelled} unlabelled` : '');
      return h('li', { class: 'jp-TinyMLPanel-dataset', 'data-path': ds.path },
        h('div', { class: 'jp-TinyMLPanel-name' }, ds.path),
        h('div', { class: 'jp-TinyMLPanel-caps' }, text));
    });
    return h('section', { class: 'jp-TinyMLPanel-datasets' }, h('h3', {}, 'Datasets'),
      items.length ? h('ul', {}, ...items)
        : h('p', { class: 'jp-TinyMLPanel-empty' }, 'No dataset in this folder yet: start a capture notebook.'));
  }

  private _modelsSection(): HTMLElement {
    const items: HTMLElement[] = [];
    for (const reg of this._registries) {
      for (const model of reg.models) {
        for (const v of [...model.versions].reverse()) {
          const chosen = this._selectedModel !== null && this._selectedModel.registry === reg.path &&
            this._selectedModel.name === model.name && this._selectedModel.version === v.version;
          const item = h('li', {
            class: `jp-TinyMLPanel-model${chosen ? ' jp-mod-selected' : ''}`,
            'data-label': v.label,
            title: `${reg.path}: ${v.label}, SHA-256 ${v.sha256} (click to select)`
          },
            h('div', { class: 'jp-TinyMLPanel-name' }, v.label),
            h('div', { class: 'jp-TinyMLPanel-caps' },
              `${v.size.toLocaleString()} bytes · ${v.sha256.slice(0, 12)} · ` +
              `${v.deployments} deployment(s)${v.signed ? ' · signed' : ''} · ${reg.path}`));
          item.addEventListener('click', () => this.selectModel(chosen ? null : {
            registry: reg.path, name: model.name, version: v.version, label: v.label
          }));
          items.push(item);
        }
      }
    }
    return h('section', { class: 'jp-TinyMLPanel-models' }, h('h3', {}, 'Models'),
      items.length ? h('ul', {}, ...items)
        : h('p', { class: 'jp-TinyMLPanel-empty' }, 'No model registry in this folder yet.'),
      items.length ? h('div', { class: 'jp-TinyMLPanel-actions' },
        this._button('Deploy selected', 'Deploy the selected model to the selected device', () =>
          this.run(CommandIDs.deploySelectedModel))) : null);
  }

  private _commands: CommandRegistry;
  private _devices: IDevice[] = [];
  private _boards: ICatalogBoard[] = [];
  private _lessons: ILesson[] = [];
  private _datasets: IDataset[] = [];
  private _registries: IRegistry[] = [];
  private _webSerial: string[] | null = null;   // the granted ports' USB ids; null: no Web Serial
  private _selectedDevice: string | null = null;
  private _selectedModel: ISelectedModel | null = null;
  private _boardToStart = 'nano33ble';
  private _error: string | null = null;
  private _stale: string | null = null;
  private _loaded = false;
  private _timer: number | null = null;
  private _changed = new Signal<ITinyMLWorkbench, void>(this);
}
