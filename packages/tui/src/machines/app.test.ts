import { describe, expect, it } from 'vitest';
import { folder } from '../test-support/machines.js';
import {
  type AppAction,
  type AppState,
  appReducer,
  initialAppState,
  MENU,
  topDialog,
} from './app.js';
import { type Keypress, key } from './keys.js';

type KeyName = Exclude<Keypress['name'], 'char'>;

const when = folder<AppState, AppAction>(appReducer);
const k = (name: KeyName | 'char', needsLogin = false): AppAction => ({
  type: 'key',
  key: name === 'char' ? key('char', 'q') : key(name),
  needsLogin,
});

describe('app: menu and dialog stack', () => {
  it('names the entries exactly as the contract does, then Quit', () => {
    expect(MENU.map((m) => m.label)).toEqual([
      'Schedule Virtual Machine Metadata',
      'Backup Virtual Machine Metadata',
      'Restore Virtual Machine Metadata',
      'Restore Virtual Machine Metadata from Legacy Backup',
      'Quit',
    ]);
  });

  it('Given the menu, When Down twice and Up, Then the cursor is on the second entry', () => {
    expect(when(initialAppState, k('down'), k('down'), k('up')).cursor).toBe(1);
  });

  it('clamps the cursor at both ends', () => {
    expect(when(initialAppState, k('up')).cursor).toBe(0);
    expect(when(initialAppState, k('end'), k('down')).cursor).toBe(MENU.length - 1);
  });

  it('When Enter on Backup, Then the backup dialog is pushed', () => {
    const s = when(initialAppState, k('down'), k('enter'));
    expect(s.stack).toEqual([{ id: 1, kind: 'backup' }]);
  });

  it('When Enter needs a login, Then a login dialog guarding the entry is pushed', () => {
    const s = when(initialAppState, k('down'), k('down'), k('enter', true));
    expect(topDialog(s)).toEqual({ id: 1, kind: 'login', guards: 'restore' });
  });

  it('Given a login on top, When it succeeds, Then it gives way to the dialog it guarded', () => {
    const s = when(initialAppState, k('enter', true), { type: 'loggedIn', id: 1 });
    expect(s.stack).toEqual([{ id: 2, kind: 'schedule' }]);
  });

  it('ignores keys while a dialog is open, and a pop of a dialog not on top', () => {
    const open = when(initialAppState, k('enter'));
    expect(when(open, k('down'), k('enter'))).toBe(open);
    expect(when(open, { type: 'pop', id: 7 })).toBe(open);
    expect(when(open, { type: 'loggedIn', id: 1 })).toBe(open);
  });

  it('When the dialog pops, Then the menu is back with its cursor where it was', () => {
    const s = when(initialAppState, k('down'), k('down'), k('down'), k('enter'), {
      type: 'pop',
      id: 1,
    });
    expect(s.stack).toEqual([]);
    expect(s.cursor).toBe(3);
  });

  it('quits on Enter on Quit, and on q in the menu', () => {
    expect(when(initialAppState, k('end'), k('enter')).quit).toBe(true);
    expect(when(initialAppState, k('char')).quit).toBe(true);
    expect(when(initialAppState, k('end'), k('right')).quit).toBe(false);
    expect(when(initialAppState, { type: 'quit' }).quit).toBe(true);
  });
});
