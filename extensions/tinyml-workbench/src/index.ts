/**
 * tinyml-workbench for JupyterLab 4: the left-sidebar "TinyML" panel, its commands in the
 * palette (one CommandIDs table) and launcher tiles.
 *
 * The plugin provides ITinyMLWorkbench (the panel: what it lists and what is selected). The
 * server extension (workbench.lab) answers every listing; requestAPI is the only way in.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon, notebookIcon } from '@jupyterlab/ui-components';

import { IOpenedLesson, IStartedBoard } from './api';
import { CommandIDs } from './commands';
import {
  captureCells,
  connectCells,
  deployCells,
  newNotebook,
  webSerialCells
} from './notebooks';
import { deviceName, TinyMLPanel, webSerialName } from './panel';
import { postAPI, requestAPI } from './request';
import { ITinyMLWorkbench } from './tokens';

export { CommandIDs } from './commands';
export { ITinyMLWorkbench } from './tokens';
export { requestAPI } from './request';

const CATEGORY = 'TinyML';

const CHIP_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M7 5h10a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2zm2 4v6h6V9H9z"/>
    <path d="M8 1h2v3H8zM14 1h2v3h-2zM8 20h2v3H8zM14 20h2v3h-2zM1 8h3v2H1zM1 14h3v2H1zM20 8h3v2h-3zM20 14h3v2h-3z"/>
  </g>
</svg>`;

export const chipIcon = new LabIcon({ name: 'tinyml-workbench:chip', svgstr: CHIP_SVG });

const plugin: JupyterFrontEndPlugin<ITinyMLWorkbench> = {
  id: 'tinyml-workbench:plugin',
  description: 'The TinyML panel: devices, virtual boards, lessons, datasets and models.',
  autoStart: true,
  provides: ITinyMLWorkbench,
  optional: [ICommandPalette, ILauncher, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null
  ): ITinyMLWorkbench => {
    const { commands, shell } = app;
    const panel = new TinyMLPanel(commands);
    panel.title.icon = chipIcon;
    shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, panel.id);
    }

    const openPath = (path: string) => commands.execute('docmanager:open', { path });

    commands.addCommand(CommandIDs.showPanel, {
      label: 'Show the TinyML Panel',
      caption: 'Devices, lessons, datasets and models',
      execute: () => shell.activateById(panel.id)
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the TinyML Panel',
      execute: () => panel.refresh(true)
    });

    /** A notebook that opens a board through the Web Serial bridge (`board`: its catalog id). */
    const connectWebSerial = (board: string | null) =>
      newNotebook(app, webSerialCells(board || 'board', board || null));

    commands.addCommand(CommandIDs.connect, {
      label: args => (args.url ? `Connect ${args.url}` : 'Connect a Board'),
      caption:
        'Open a device in a new notebook: the selected one, else a choice of the listed devices ' +
        'and, where the browser has Web Serial, of a board plugged into this computer',
      execute: async args => {
        if (args.webserial) {
          return connectWebSerial((args.board as string) || null);
        }
        const url = (args.url as string) || panel.selectedDevice;
        if (url) {
          return newNotebook(app, connectCells(url));
        }
        await panel.refresh();
        const choices: { label: string; open: () => Promise<unknown> }[] = panel.devices.map(dev => ({
          label: `${deviceName(dev)}${dev.kind === 'virtual' ? ' (virtual)' : ''}: ${dev.url}`,
          open: () => newNotebook(app, connectCells(dev.url))
        }));
        const granted = panel.webSerialPorts;
        if (granted !== null) {
          for (const port of granted) {
            choices.push({
              label: `${webSerialName(port)}: Web Serial, granted in this browser`,
              open: () => connectWebSerial(port.board ? port.board.id : null)
            });
          }
          if (!granted.length) {
            choices.push({
              label: 'A board plugged into this computer: Web Serial (the browser asks for the port)',
              open: () => connectWebSerial(null)
            });
          }
        }
        if (!choices.length) {
          throw new Error(
            'no device to connect: plug a board into the server, start a virtual board, or open ' +
            'this page in Chrome or Edge (Web Serial) to reach a board plugged into this computer'
          );
        }
        if (choices.length === 1) {
          return choices[0].open();
        }
        const labels = choices.map(c => c.label);
        const choice = await InputDialog.getItem({ title: 'Connect a board', items: labels });
        if (!choice.button.accept || choice.value === null) {
          return;
        }
        return choices[labels.indexOf(choice.value)].open();
      }
    });

    commands.addCommand(CommandIDs.startVirtualBoard, {
      label: args => (args.board ? `Start a Virtual ${args.board}` : 'Start a Virtual Board'),
      caption: 'The server starts a virtual board (python -m workbench.sim) and lists it',
      execute: async args => {
        const board = (args.board as string) || panel.boardToStart;
        const started = await postAPI<IStartedBoard>('virtual-boards', { board });
        await panel.refresh();
        panel.selectDevice(started.url);
        shell.activateById(panel.id);
        return started;
      }
    });

    commands.addCommand(CommandIDs.stopVirtualBoard, {
      label: 'Stop a Virtual Board',
      isVisible: () => false,
      execute: async args => {
        await requestAPI(`virtual-boards/${args.pid}`, { method: 'DELETE' });
        await panel.refresh();
      }
    });

    commands.addCommand(CommandIDs.openLesson, {
      label: args => (args.title ? String(args.title) : 'Open a Lesson'),
      caption: 'Open a lesson (copied into this folder the first time)',
      icon: notebookIcon,
      execute: async args => {
        let name = args.name as string | undefined;
        if (!name) {
          if (!panel.lessons.length) {
            await panel.refresh(true);
          }
          const titles = panel.lessons.map(l => l.title);
          const choice = await InputDialog.getItem({ title: 'Open a lesson', items: titles });
          if (!choice.button.accept || choice.value === null) {
            return;
          }
          name = panel.lessons[titles.indexOf(choice.value)].name;
        }
        const opened = await postAPI<IOpenedLesson>(`lessons/${encodeURIComponent(name)}`);
        if (opened.copied) {
          void panel.refresh(true);
        }
        return openPath(opened.path);
      }
    });

    commands.addCommand(CommandIDs.newCaptureNotebook, {
      label: 'New Capture Notebook',
      caption: 'A notebook with a capture panel on the selected device (else the default one)',
      icon: chipIcon,
      execute: args =>
        newNotebook(app, captureCells((args.url as string) || panel.selectedDevice))
    });

    commands.addCommand(CommandIDs.deploySelectedModel, {
      label: 'Deploy the Selected Model',
      caption: 'A notebook with a flash panel for the model version selected in the TinyML panel',
      isEnabled: () => panel.selectedModel !== null,
      execute: () => {
        const model = panel.selectedModel;
        if (!model) {
          throw new Error('select a model version in the TinyML panel first');
        }
        return newNotebook(app, deployCells(model.registry, model.label, panel.selectedDevice));
      }
    });
    panel.changed.connect(() => commands.notifyCommandChanged(CommandIDs.deploySelectedModel));

    if (palette) {
      for (const command of [CommandIDs.showPanel, CommandIDs.connect, CommandIDs.startVirtualBoard,
        CommandIDs.openLesson, CommandIDs.newCaptureNotebook, CommandIDs.deploySelectedModel,
        CommandIDs.refresh]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }

    if (launcher) {
      launcher.add({ command: CommandIDs.newCaptureNotebook, category: CATEGORY, rank: 0 });
      requestAPI<{ lessons: { name: string; title: string }[] }>('lessons')
        .then(answer => {
          answer.lessons.forEach((lesson, i) =>
            launcher.add({
              command: CommandIDs.openLesson,
              args: { name: lesson.name, title: lesson.title },
              category: CATEGORY,
              rank: i + 1
            })
          );
        })
        .catch(error => console.warn('tinyml-workbench: no lessons for the launcher:', error));
    }

    // a failure in a command run from the palette or the launcher is shown, not swallowed
    commands.commandExecuted.connect((_, executed) => {
      if (!executed.id.startsWith('tinyml-workbench:')) {
        return;
      }
      executed.result.catch(error => {
        if (!panel.isVisible) {
          void showErrorMessage('TinyML', error);
        } else {
          panel.setError((error as Error).message ?? String(error));
        }
      });
    });

    return panel;
  }
};

export default plugin;
