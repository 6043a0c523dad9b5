import type { Keypress } from './keys.js';

/** Longest user name or password the dialog accepts (a paste of anything longer is cut). */
export const MAX_FIELD = 256;

export type LoginField = 'username' | 'password';

export type LoginState =
  | {
      readonly kind: 'edit';
      readonly req: number;
      readonly field: LoginField;
      readonly username: string;
      readonly password: string;
      readonly error: string | null;
    }
  | {
      readonly kind: 'submitting';
      readonly req: number;
      readonly username: string;
      readonly password: string;
    }
  /** Logged in: the dialog gives way to the one it guards. */
  | { readonly kind: 'done'; readonly req: number }
  /** Cancelled. */
  | { readonly kind: 'closed'; readonly req: number };

export type LoginAction =
  | { readonly type: 'key'; readonly key: Keypress }
  | { readonly type: 'loginOk'; readonly req: number }
  | { readonly type: 'loginFailed'; readonly req: number; readonly message: string };

export type LoginWork = {
  readonly kind: 'login';
  readonly req: number;
  readonly username: string;
  readonly password: string;
};

export function initialLogin(username = 'root'): LoginState {
  return { kind: 'edit', req: 0, field: 'password', username, password: '', error: null };
}

/** Printable characters of a key press or paste, control characters dropped. */
function printable(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c >= 0x20 && c !== 0x7f) out += ch;
  }
  return out;
}

export function loginReducer(state: LoginState, action: LoginAction): LoginState {
  switch (action.type) {
    case 'loginOk':
      return state.kind === 'submitting' && state.req === action.req
        ? { kind: 'done', req: state.req }
        : state;
    case 'loginFailed':
      return state.kind === 'submitting' && state.req === action.req
        ? {
            kind: 'edit',
            req: state.req,
            field: 'password',
            username: state.username,
            password: '',
            error: action.message,
          }
        : state;
    case 'key': {
      if (state.kind !== 'edit') {
        // While the pool checks the credentials, Esc still gives up.
        return state.kind === 'submitting' && action.key.name === 'escape'
          ? { kind: 'closed', req: state.req }
          : state;
      }
      const k = action.key;
      const value = state[state.field];
      const set = (v: string): LoginState => ({ ...state, [state.field]: v });
      switch (k.name) {
        case 'escape':
          return { kind: 'closed', req: state.req };
        case 'tab':
        case 'up':
        case 'down':
          return { ...state, field: state.field === 'username' ? 'password' : 'username' };
        case 'backspace':
          return value === '' ? state : set(Array.from(value).slice(0, -1).join(''));
        case 'char': {
          // A paste that carries its line end (a password copied with it): the text, then
          // Enter, as if typed; anything after the line end is dropped.
          const end = k.char.search(/[\r\n]/);
          if (end >= 0) {
            const typed = loginReducer(state, {
              type: 'key',
              key: { name: 'char', char: k.char.slice(0, end) },
            });
            return loginReducer(typed, { type: 'key', key: { name: 'enter' } });
          }
          const add = printable(k.char);
          if (add === '') return state;
          return set(
            Array.from(value + add)
              .slice(0, MAX_FIELD)
              .join(''),
          );
        }
        case 'enter':
          if (state.field === 'username') {
            return state.username.trim() === '' ? state : { ...state, field: 'password' };
          }
          if (state.username.trim() === '') {
            return { ...state, field: 'username', error: 'Enter a user name.' };
          }
          return {
            kind: 'submitting',
            req: state.req + 1,
            username: state.username.trim(),
            password: state.password,
          };
        default:
          return state;
      }
    }
  }
}

export function loginWork(state: LoginState): LoginWork | null {
  return state.kind === 'submitting'
    ? { kind: 'login', req: state.req, username: state.username, password: state.password }
    : null;
}
