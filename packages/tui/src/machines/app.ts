import { BACKUP_FORMAT_VERSION } from '@xsmeta/core';
import { type Keypress, moveCursor } from './keys.js';

/** The dialogs behind the menu's entries. */
export type FeatureKind = 'schedule' | 'backup' | 'restore' | 'legacy';

export interface MenuEntry {
  readonly id: FeatureKind | 'quit';
  /** The entry's text, exactly as xsconsole names it. */
  readonly label: string;
  /** The status pane: a title, what the entry does, and its keys. */
  readonly title: string;
  readonly help: readonly string[];
  readonly keys: readonly (readonly [string, string])[];
}

/** The title of the menu, as xsconsole names it. */
export const MENU_TITLE = 'Backup, Restore and Update';

export const MENU: readonly MenuEntry[] = [
  {
    id: 'schedule',
    label: 'Schedule Virtual Machine Metadata',
    title: 'Schedule Virtual Machine Metadata Backup',
    help: [
      'Choose how often the pool backs up its VM metadata on its own: daily, weekly, monthly or never.',
      "Scheduled backups go to the pool's default storage repository.",
    ],
    keys: [['<Enter>', 'Change Schedule']],
  },
  {
    id: 'backup',
    label: 'Backup Virtual Machine Metadata',
    title: 'Backup Virtual Machine Metadata',
    help: [
      'Save the configuration of every VM and custom template, with the pool database, to the Pool Metadata Backup disk of a storage repository.',
      'The disk keeps the most recent backups. After moving the storage repository to another pool, restore them from there.',
      `Backups are written in format version ${BACKUP_FORMAT_VERSION}.`,
    ],
    keys: [['<Enter>', 'Backup']],
  },
  {
    id: 'restore',
    label: 'Restore Virtual Machine Metadata',
    title: 'Restore Virtual Machine Metadata',
    help: [
      'Recreate VMs from a metadata backup kept on a storage repository, for example after attaching that storage to a new pool.',
      'Run a dry run first: it makes every check and changes nothing.',
    ],
    keys: [['<Enter>', 'Restore']],
  },
  {
    id: 'legacy',
    label: 'Restore Virtual Machine Metadata from Legacy Backup',
    title: 'Restore from a Legacy Backup',
    help: [
      'Restore from a backup disk written by the old xe-backup-metadata script.',
      'Such disks carry no proof of origin: any VM can forge one. Use this only on storage whose every disk you trust.',
      'Not available on a storage repository that holds a new-format backup disk.',
    ],
    keys: [['<Enter>', 'Restore']],
  },
  {
    id: 'quit',
    label: 'Quit',
    title: 'Quit',
    help: ['Leave the console and give the terminal back.'],
    keys: [
      ['<Enter>', 'Quit'],
      ['q', 'Quit from the menu'],
    ],
  },
];

/** A dialog on the stack. Login stands in for the dialog it guards (`guards`). */
export type Dialog =
  | { readonly id: number; readonly kind: FeatureKind }
  | { readonly id: number; readonly kind: 'login'; readonly guards: FeatureKind };

export interface AppState {
  /** The selected menu entry. */
  readonly cursor: number;
  /** Dialogs, bottom first; the last one is shown and gets the keys. */
  readonly stack: readonly Dialog[];
  readonly nextId: number;
  /** The user asked to leave. */
  readonly quit: boolean;
}

export type AppAction =
  /** A key pressed while the menu has the focus (no dialog open). */
  | { readonly type: 'key'; readonly key: Keypress; readonly needsLogin: boolean }
  /** The dialog `id` closed itself; ignored unless it is on top. */
  | { readonly type: 'pop'; readonly id: number }
  /** The login dialog `id` succeeded: it gives way to the dialog it guarded. */
  | { readonly type: 'loggedIn'; readonly id: number }
  | { readonly type: 'quit' };

export const initialAppState: AppState = { cursor: 0, stack: [], nextId: 1, quit: false };

export function topDialog(state: AppState): Dialog | undefined {
  return state.stack[state.stack.length - 1];
}

function push(state: AppState, kind: FeatureKind, needsLogin: boolean): AppState {
  const dialog: Dialog = needsLogin
    ? { id: state.nextId, kind: 'login', guards: kind }
    : { id: state.nextId, kind };
  return { ...state, stack: [...state.stack, dialog], nextId: state.nextId + 1 };
}

export function appReducer(state: AppState, action: AppAction): AppState {
  switch (action.type) {
    case 'key': {
      if (state.stack.length > 0 || state.quit) return state;
      const k = action.key;
      const moved = moveCursor(state.cursor, MENU.length, k);
      if (moved !== null) return moved === state.cursor ? state : { ...state, cursor: moved };
      if (k.name === 'char' && k.char === 'q') return { ...state, quit: true };
      if (k.name === 'enter' || k.name === 'right') {
        const entry = MENU[state.cursor];
        if (!entry) return state;
        if (entry.id === 'quit') return k.name === 'enter' ? { ...state, quit: true } : state;
        return push(state, entry.id, action.needsLogin);
      }
      return state;
    }
    case 'pop': {
      const top = topDialog(state);
      if (!top || top.id !== action.id) return state;
      return { ...state, stack: state.stack.slice(0, -1) };
    }
    case 'loggedIn': {
      const top = topDialog(state);
      if (!top || top.id !== action.id || top.kind !== 'login') return state;
      const next: Dialog = { id: state.nextId, kind: top.guards };
      return { ...state, stack: [...state.stack.slice(0, -1), next], nextId: state.nextId + 1 };
    }
    case 'quit':
      return state.quit ? state : { ...state, quit: true };
  }
}
