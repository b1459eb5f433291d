/** The JSON the server extension answers (docs/jupyterlab.md lists every route). */

export interface ISensor {
  id: string;
  kind: string;
  channels: string[];
  units: string;
  rate_hz: number;
}

export interface IBoardCapabilities {
  id: string;
  name: string;
  vendor: string;
  kind: string;
  mcu: string;
  core: string;
  clock_hz: number;
  flash_bytes: number;
  ram_bytes: number;
  slot_bytes: number;
  arena_bytes: number;
  sensors: ISensor[];
}

export interface IDevice {
  url: string;
  kind: 'serial' | 'virtual';
  description: string;
  usb: string;
  catalog_matches: string[];
  board: IBoardCapabilities | null;
  pid: number | null;
  state: { in_use: boolean | null; clients: number | null };
}

export interface ICatalogBoard {
  id: string;
  name: string;
  usb: string[];
}

export interface ILesson {
  number: number;
  name: string;
  title: string;
  path: string | null;
}

export interface IOpenedLesson {
  name: string;
  title: string;
  path: string;
  copied: boolean;
}

export interface IDataset {
  path: string;
  name: string;
  recordings?: number;
  seconds?: number;
  labels?: { [label: string]: number };
  unlabelled?: number;
  error?: string;
}

export interface IModelVersion {
  version: number;
  label: string;
  sha256: string;
  size: number;
  created: string;
  signed: boolean;
  deployments: number;
}

export interface IRegistry {
  path: string;
  models: { name: string; versions: IModelVersion[] }[];
}

export interface IStartedBoard {
  board: string;
  url: string;
  pid: number;
}

/** A registry version chosen in the panel (what "deploy the selected model" deploys). */
export interface ISelectedModel {
  registry: string;
  name: string;
  version: number;
  label: string;
}

/** A serial port this browser granted to the page (`navigator.serial.getPorts()`), matched
 * to the catalog by its USB ids. */
export interface IWebSerialPort {
  /** `VVVV:PPPP`, upper-case hex (empty when the port is not a USB one). */
  usb: string;
  /** Every catalog board with these USB ids (a generic USB-UART chip may match several). */
  matches: ICatalogBoard[];
  /** The catalog board, when exactly one matches; else null. */
  board: ICatalogBoard | null;
}
