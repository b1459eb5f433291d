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

export function connectCells(url: string): ICell[] {
  return [
    {
      cell_type: 'markdown',
      source: `# A board: \`${url}\`\n\nOpened with the HELLO handshake: it says who it is, its memory and its sensors.`
    },
    {
      cell_type: 'code',
      source: [
        'import workbench',
        '',
        `dev = workbench.open_device(${py(url)})`,
        'info = dev.info',
        'print(f"{info.board_name}: {info.mcu} ({info.core}) at {info.clock_hz / 1e6:g} MHz, "',
        '      f"flash {info.flash_bytes // 1024} KB, RAM {info.ram_bytes // 1024} KB")',
        'for s in dev.sensors:',
        '    print(f"  {s.id:9s} {s.kind:13s} {len(s.channels)} channel(s) in {s.units} at {s.rate_hz:g} Hz")'
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

export function deployCells(registry: string, label: string, url: string | null): ICell[] {
  const where = url ? `, url=${py(url)}` : '';
  return [
    {
      cell_type: 'markdown',
      source:
        `# Deploy ${label}\n\nThe gates decide whether it may go; Deploy sends it to the board's inactive slot. ` +
        `The registry (\`${registry}\`) records the deployment.`
    },
    {
      cell_type: 'code',
      source: [
        'from workbench.deploy import ModelRegistry',
        'from workbench.ui import FlashPanel',
        '',
        `registry = ModelRegistry(${py(registry)})`,
        `panel = FlashPanel(registry${where})`,
        `panel.select(${py(label)})`,
        'panel'
      ].join('\n')
    }
  ];
}
