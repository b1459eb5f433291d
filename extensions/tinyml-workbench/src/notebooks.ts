/**
 * New notebooks with the workbench's cells in them: connect, capture, deploy. Each is created
 * by JupyterLab's own `notebook:create-new` in the server's root (so the relative paths the
 * panel lists are right), filled, saved, and its cells run once the kernel is ready.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

export interface ICell {
  cell_type: 'code' | 'markdown';
  source: string;
}

/** A Python string literal of `text` (JSON's escapes are Python's too). */
export function py(text: string): string {
  return JSON.stringify(text);
}

export async function newNotebook(
  app: JupyterFrontEnd,
  cells: ICell[],
  run = true
): Promise<NotebookPanel> {
  const panel = (await app.commands.execute('notebook:create-new', {
    cwd: '',
    kernelName: 'python3'
  })) as NotebookPanel;
  await panel.context.ready;
  const shared = panel.content.model!.sharedModel;
  shared.transact(() => {
    shared.deleteCellRange(0, shared.cells.length);
    shared.insertCells(
      0,
      cells.map(cell => ({ cell_type: cell.cell_type, source: cell.source, metadata: {} })) as any
    );
  });
  await panel.context.save();
  if (run) {
    await panel.sessionContext.ready;
    await NotebookActions.runAll(panel.content, panel.sessionContext);
  }
  return panel;
}

/** Lines that print what the device `dev` said in its HELLO: board, memory, sensors. */
function helloLines(): string[] {
  return [
    'info = dev.info',
    'print(f"{info.board_name}: {info.mcu} ({info.core}) at {info.clock_hz / 1e6:g} MHz, "',
    '      f"flash {info.flash_bytes // 1024} KB, RAM {info.ram_bytes // 1024} KB")',
    'for s in dev.sensors:',
    '    print(f"  {s.id:9s} {s.kind:13s} {len(s.channels)} channel(s) in {s.units} at {s.rate_hz:g} Hz")'
  ];
}

export function connectCells(url: string): ICell[] {
  return [
    {
      cell_type: 'markdown',
      source: `# A board: \`${url}\`\n\nOpened with the HELLO handshake: it says who it is, its memory and its sensors.`
    },
    {
      cell_type: 'code',
      source: ['import workbench', '', `dev = workbench.open_device(${py(url)})`, ...helloLines()].join('\n')
    }
  ];
}

/**
 * A notebook for a board plugged into the browser's computer: its first cell shows the Web
 * Serial bridge (which reopens a port granted to this page, or asks for one on Connect), the
 * next opens `webserial://<channel>` (it waits for the port) and prints the HELLO.
 * `board`: the catalog id the port matched, offered first by the browser's port picker.
 */
export function webSerialCells(channel: string, board: string | null): ICell[] {
  const boards = board ? `, boards=[${py(board)}]` : '';
  return [
    {
      cell_type: 'code',
      source: [
        '# A board plugged into this computer, reached through the browser (Web Serial).',
        '# A port granted to this page before is reopened at once; otherwise click Connect',
        '# and choose the board in the browser\'s list.',
        'from workbench.ui import WebSerial',
        '',
        `bridge = WebSerial(${py(channel)}${boards})`,
        'bridge'
      ].join('\n')
    },
    {
      cell_type: 'code',
      source: [
        `# webserial://${channel} works wherever a device URL does (capture, deploy, ...);`,
        '# this waits (up to 2 minutes) for the port, then asks the board who it is.',
        'dev = bridge.open_device()',
        ...helloLines()
      ].join('\n')
    }
  ];
}

export function captureCells(url: string | null, dataset = 'captures'): ICell[] {
  const where = url ? `, url=${py(url)}` : '';
  return [
    {
      cell_type: 'markdown',
      source:
        '# Capture\n\nConnect, choose a sensor and a label, record. Every take is saved in the dataset folder ' +
        `\`${dataset}\` beside this notebook.`
    },
    {
      cell_type: 'code',
      source: [
        'from workbench.ui import CapturePanel',
        '',
        `panel = CapturePanel(${py(dataset)}${where})`,
        'panel'
      ].join('\n')
    }
  ];
}

/**
 * A notebook that deploys a registry version: a FlashPanel on it (the gates, the upload's
 * progress, the result; Deploy again or another version from its menu), then a cell that
 * connects and deploys at once, as Connect then Deploy would. The registry records it.
 */
export function deployCells(registry: string, label: string, url: string | null): ICell[] {
  const where = url ? `, url=${py(url)}` : '';
  return [
    {
      cell_type: 'markdown',
      source:
        `# Deploy ${label}\n\nThe gates decide whether it may go; the upload goes to the board's inactive slot, ` +
        `then the board switches to it. The registry (\`${registry}\`) records the deployment.`
    },
    {
      cell_type: 'code',
      source: [
        'from workbench.deploy import ModelRegistry',
        'from workbench.ui import FlashPanel',
        '',
        `registry = ModelRegistry(${py(registry)})`,
        `panel = FlashPanel(registry${where}, connect=False)`,
        `panel.select(${py(label)})`,
        'panel'
      ].join('\n')
    },
    {
      cell_type: 'code',
      source: [
        '# Connect, check the gates and deploy (what Connect, then Deploy, do in the panel above);',
        '# the panel shows the progress and the result.',
        'panel.connect()',
        'panel.wait(120)',
        'panel.deploy();'
      ].join('\n')
    }
  ];
}
