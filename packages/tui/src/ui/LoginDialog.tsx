import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { describeError } from '../machines/keys.js';
import {
  initialLogin,
  type LoginAction,
  type LoginWork,
  loginReducer,
  loginWork,
} from '../machines/login.js';
import type { ConsoleServices } from '../services.js';
import { type DialogProps, useDialogKeys, useMachine } from './dialog.js';
import { KeyHelp, Message, Panel } from './widgets.js';
import { useWork } from './work.js';

const LOGIN_TITLE = 'Login';

async function performLogin(
  services: ConsoleServices,
  work: LoginWork,
  dispatch: (a: LoginAction) => void,
): Promise<void> {
  try {
    await services.login(work.username, work.password);
    dispatch({ type: 'loginOk', req: work.req });
  } catch (err) {
    dispatch({ type: 'loginFailed', req: work.req, message: describeError(err) });
  }
}

function Field(props: {
  label: string;
  value: string;
  focused: boolean;
  width: number;
}): ReactNode {
  return (
    <Text wrap="truncate-end">
      <Text bold={props.focused}>{props.label.padEnd(10)}</Text>
      <Text inverse={props.focused}>
        {`${props.value}${props.focused ? '_' : ''}`.padEnd(Math.min(32, props.width - 12))}
      </Text>
    </Text>
  );
}

/** Asks for the pool's credentials, as xsconsole does before any change. */
export function LoginDialog(
  props: DialogProps & { purpose: string; onLoggedIn: () => void },
): ReactNode {
  const [state, dispatch] = useMachine(loginReducer, () => initialLogin());
  const act = (a: LoginAction) => {
    const next = dispatch(a);
    if (next.kind === 'closed') props.onClose();
    else if (next.kind === 'done') props.onLoggedIn();
  };
  useDialogKeys(props.id, (key) => act({ type: 'key', key }));
  useWork(loginWork(state), (w) => performLogin(props.services, w, act));
  const inner = props.width - 4;
  return (
    <Panel title={`${LOGIN_TITLE} · ${props.purpose}`} width={props.width} height={props.height}>
      <Text>Please log in to the pool with a user that may change it.</Text>
      <Text> </Text>
      {state.kind === 'edit' || state.kind === 'submitting' ? (
        <Box flexDirection="column">
          <Field
            label="Username"
            value={state.username}
            focused={state.kind === 'edit' && state.field === 'username'}
            width={inner}
          />
          {/* The password is never drawn: one star per character. */}
          <Field
            label="Password"
            value={'*'.repeat(Array.from(state.password).length)}
            focused={state.kind === 'edit' && state.field === 'password'}
            width={inner}
          />
          <Text> </Text>
          {state.kind === 'submitting' ? <Text>Logging in…</Text> : null}
          {state.kind === 'edit' && state.error ? (
            <Message tone="bad">Login failed: {state.error}</Message>
          ) : null}
        </Box>
      ) : null}
      <Box flexGrow={1} />
      <KeyHelp
        keys={
          state.kind === 'edit'
            ? [
                ['<Tab>', 'Next Field'],
                ['<Enter>', 'OK'],
                ['<Esc>', 'Cancel'],
              ]
            : [['<Esc>', 'Cancel']]
        }
      />
    </Panel>
  );
}
