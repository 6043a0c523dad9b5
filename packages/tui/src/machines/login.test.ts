import { describe, expect, it } from 'vitest';
import { folder } from '../test-support/machines.js';
import { type Keypress, key } from './keys.js';

type KeyName = Exclude<Keypress['name'], 'char'>;

import {
  initialLogin,
  type LoginAction,
  type LoginState,
  loginReducer,
  loginWork,
  MAX_FIELD,
} from './login.js';

const when = folder<LoginState, LoginAction>(loginReducer);
const type = (text: string): LoginAction => ({ type: 'key', key: key('char', text) });
const press = (name: KeyName | 'char'): LoginAction => ({
  type: 'key',
  key: name === 'char' ? key('char', '') : key(name),
});

describe('login machine', () => {
  it('Given the dialog, Then the user is root and the password field has the focus', () => {
    expect(initialLogin()).toMatchObject({ kind: 'edit', field: 'password', username: 'root' });
  });

  it('When typing a password and Enter, Then it submits once (new request)', () => {
    const s = when(initialLogin(), type('se'), type('cret'), press('enter'));
    expect(s).toEqual({ kind: 'submitting', req: 1, username: 'root', password: 'secret' });
    expect(loginWork(s)).toEqual({ kind: 'login', req: 1, username: 'root', password: 'secret' });
    expect(loginWork(initialLogin())).toBeNull();
  });

  it('edits the user name after Tab, with Backspace, and drops control characters', () => {
    const s = when(
      initialLogin(),
      press('tab'),
      press('backspace'),
      press('backspace'),
      type('\u0007x\u001b'),
    );
    expect(s).toMatchObject({ field: 'username', username: 'rox' });
  });

  it('When a password is pasted with its line end, Then it submits it without the line end', () => {
    for (const paste of ['secret\n', 'secret\r', 'secret\r\n'])
      expect(when(initialLogin(), type(paste))).toEqual({
        kind: 'submitting',
        req: 1,
        username: 'root',
        password: 'secret',
      });
    // On the user name, the line end moves to the password, as Enter does.
    expect(when(initialLogin(), press('tab'), type('admin\n'))).toMatchObject({
      kind: 'edit',
      field: 'password',
      username: 'rootadmin',
    });
  });

  it('cuts a paste longer than the limit', () => {
    const s = when(initialLogin(), type('p'.repeat(MAX_FIELD + 10)));
    expect(s.kind === 'edit' && s.password.length).toBe(MAX_FIELD);
  });

  it('When the pool refuses, Then it is back to the password, emptied, with the reason', () => {
    const s = when(initialLogin(), type('bad'), press('enter'), {
      type: 'loginFailed',
      req: 1,
      message: 'The user name or password is wrong.',
    });
    expect(s).toEqual({
      kind: 'edit',
      req: 1,
      field: 'password',
      username: 'root',
      password: '',
      error: 'The user name or password is wrong.',
    });
  });

  it('ignores an answer to another request', () => {
    const submitting = when(initialLogin(), type('x'), press('enter'));
    expect(when(submitting, { type: 'loginOk', req: 9 })).toBe(submitting);
    expect(when(submitting, { type: 'loginOk', req: 1 })).toEqual({ kind: 'done', req: 1 });
  });

  it('refuses an empty user name, and Esc cancels, also while submitting', () => {
    const noUser = when(initialLogin(''), type('pw'), press('enter'));
    expect(noUser).toMatchObject({ kind: 'edit', field: 'username', error: 'Enter a user name.' });
    expect(when(initialLogin(), press('escape')).kind).toBe('closed');
    expect(when(initialLogin(), type('x'), press('enter'), press('escape')).kind).toBe('closed');
  });
});
