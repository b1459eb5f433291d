/** Every command of the extension, in one table (the palette shows them under "TinyML"). */
export namespace CommandIDs {
  /** Open a device in a new notebook. Args: `url` (default: the device selected in the panel). */
  export const connect = 'tinyml-workbench:connect-board';
  /** Ask the server to start a virtual board. Args: `board` (catalog id, default the panel's choice). */
  export const startVirtualBoard = 'tinyml-workbench:start-virtual-board';
  /** Stop a virtual board the server lists. Args: `pid`. */
  export const stopVirtualBoard = 'tinyml-workbench:stop-virtual-board';
  /** Open a lesson (copied into the server's root if needed). Args: `name` (else a menu). */
  export const openLesson = 'tinyml-workbench:open-lesson';
  /** A new notebook whose cell shows a CapturePanel. Args: `url`, `dataset`. */
  export const newCaptureNotebook = 'tinyml-workbench:new-capture-notebook';
  /** A notebook whose cell deploys the selected registry version with a FlashPanel. */
  export const deploySelectedModel = 'tinyml-workbench:deploy-selected-model';
  /** Read the devices, lessons, datasets and models again. */
  export const refresh = 'tinyml-workbench:refresh';
  /** Show the TinyML panel in the left sidebar. */
  export const showPanel = 'tinyml-workbench:show-panel';
}
