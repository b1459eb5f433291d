/**
 * The extension's plugin token: another plugin can require `ITinyMLWorkbench` to read what
 * the TinyML panel lists and selects, or to refresh it.
 */
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

import { IDevice, ISelectedModel } from './api';

export interface ITinyMLWorkbench {
  /** The devices last listed (serial ports and virtual boards the server sees). */
  readonly devices: ReadonlyArray<IDevice>;
  /** The URL of the device selected in the panel, or null. */
  readonly selectedDevice: string | null;
  /** The registry version selected in the panel, or null. */
  readonly selectedModel: ISelectedModel | null;
  /** Emitted after every refresh and selection change. */
  readonly changed: ISignal<ITinyMLWorkbench, void>;
  /** Read the devices (and, with `all`, the lessons, datasets and models) again. */
  refresh(all?: boolean): Promise<void>;
}

export const ITinyMLWorkbench = new Token<ITinyMLWorkbench>(
  'tinyml-workbench:ITinyMLWorkbench',
  'The TinyML panel: devices, lessons, datasets and models, and what is selected.'
);
