import { escapeText } from '@xsmeta/core';
import { Box, Text, useApp, useInput } from 'ink';
import { type ReactNode, useEffect, useMemo, useRef } from 'react';
import { escapedServices } from '../escaped.js';
import { fit } from '../format.js';
import {
  type AppState,
  appReducer,
  type Dialog,
  type FeatureKind,
  initialAppState,
  MENU,
  MENU_TITLE,
  topDialog,
} from '../machines/app.js';
import type { Keypress } from '../machines/keys.js';
import type { ConsoleServices } from '../services.js';
import { BackupDialog } from './BackupDialog.js';
import { type DialogProps, type KeyRouter, KeyRouterContext, useMachine } from './dialog.js';
import { LoginDialog } from './LoginDialog.js';
import { RestoreDialog } from './RestoreDialog.js';
import { ScheduleDialog } from './ScheduleDialog.js';
import { toKeypress, useTerminalSize } from './terminal.js';
import { ChoiceList, KeyHelp, Panel } from './widgets.js';

/** Below this, the console asks for a bigger terminal instead of drawing a broken screen. */
const MIN_COLUMNS = 60;
const MIN_ROWS = 16;
/** From this width on, the menu and the status pane stand side by side, as in xsconsole. */
const SIDE_BY_SIDE = 110;
const MENU_WIDTH = 58;

export interface ConsoleProps {
  readonly services: ConsoleServices;
  /** Shown in the header, e.g. the pool's or host's name. */
  readonly title?: string;
}

function labelOf(kind: FeatureKind): string {
  return MENU.find((m) => m.id === kind)?.label ?? kind;
}

/** The one component that chooses what each dialog on the stack is. */
function ActiveDialog(props: {
  dialog: Dialog;
  common: Omit<DialogProps, 'onClose'>;
  pop: () => void;
  loggedIn: () => void;
}): ReactNode {
  const { dialog: d, common } = props;
  const p = { ...common, onClose: props.pop };
  switch (d.kind) {
    case 'login':
      return <LoginDialog {...p} purpose={labelOf(d.guards)} onLoggedIn={props.loggedIn} />;
    case 'schedule':
      return <ScheduleDialog {...p} />;
    case 'backup':
      return <BackupDialog {...p} />;
    case 'restore':
      return <RestoreDialog {...p} variant="ring" />;
    case 'legacy':
      return <RestoreDialog {...p} variant="legacy" />;
  }
}

function StatusPane(props: { cursor: number; width: number; height: number }): ReactNode {
  const entry = MENU[props.cursor];
  if (!entry) return null;
  return (
    <Panel title={entry.title} width={props.width} height={props.height} dim>
      {entry.help.map((p) => (
        <Text key={p}>{p}</Text>
      ))}
      <Box flexGrow={1} />
      <KeyHelp keys={entry.keys} />
    </Panel>
  );
}

function MenuScreen(props: { state: AppState; columns: number; height: number }): ReactNode {
  const { state, columns, height } = props;
  const items = MENU.map((m) => ({ key: m.id, label: m.label }));
  const wide = columns >= SIDE_BY_SIDE;
  const menuHeight = MENU.length + 3;
  return (
    <Box flexDirection={wide ? 'row' : 'column'} height={height}>
      <Panel
        title={MENU_TITLE}
        width={wide ? MENU_WIDTH : columns}
        height={wide ? height : menuHeight}
      >
        <ChoiceList
          items={items}
          cursor={state.cursor}
          rows={MENU.length}
          width={(wide ? MENU_WIDTH : columns) - 2}
        />
      </Panel>
      <StatusPane
        cursor={state.cursor}
        width={wide ? columns - MENU_WIDTH : columns}
        height={wide ? height : height - menuHeight}
      />
    </Box>
  );
}

/**
 * The console: a header, the "Backup, Restore and Update" menu with its status pane, or the
 * dialog on top of the stack, and a footer. It draws at most rows - 1 lines, so that Ink
 * never falls back to clearing the whole screen on each frame.
 */
export function Console(props: ConsoleProps): ReactNode {
  // Everything the services answer came from the pool or a backup: drawn escaped.
  const services = useMemo(() => escapedServices(props.services), [props.services]);
  const { exit } = useApp();
  const [state, dispatch, current] = useMachine(appReducer, () => initialAppState);
  const { columns, rows } = useTerminalSize();
  const handlers = useRef(new Map<number, (k: Keypress) => void>());
  const router = useMemo<KeyRouter>(
    () => ({
      register(id, handler) {
        handlers.current.set(id, handler);
        return () => {
          if (handlers.current.get(id) === handler) handlers.current.delete(id);
        };
      },
    }),
    [],
  );

  // The one place that reads the keyboard: it feeds the menu, or the dialog on top.
  useInput((input, k) => {
    if (k.ctrl && input === 'c') {
      dispatch({ type: 'quit' });
      return;
    }
    const key = toKeypress(input, k);
    if (!key) return;
    const top = topDialog(current());
    if (top) {
      handlers.current.get(top.id)?.(key);
      return;
    }
    const opens = key.name === 'enter' || key.name === 'right';
    dispatch({ type: 'key', key, needsLogin: opens && services.needsLogin() });
  });

  useEffect(() => {
    if (state.quit) exit();
  }, [state.quit, exit]);

  const height = Math.max(1, rows - 1);
  if (columns < MIN_COLUMNS || rows < MIN_ROWS) {
    return (
      <Box height={height} width={columns} flexDirection="column">
        <Text wrap="wrap">
          The console needs a terminal of at least 80x24 (this one is {columns}x{rows}). Enlarge it,
          or press Ctrl-C to quit.
        </Text>
      </Box>
    );
  }
  const bodyHeight = height - 2;
  const top = topDialog(state);
  // The footer names where the user is: the menu, or the entry whose dialog is open.
  const where = top ? labelOf(top.kind === 'login' ? top.guards : top.kind) : MENU_TITLE;
  const header = fit(
    ` xsmeta console${props.title ? ` · ${escapeText(props.title)}` : ''}`,
    columns,
  );
  return (
    <Box flexDirection="column" width={columns} height={height}>
      <Text inverse bold wrap="truncate-end">
        {header.padEnd(columns)}
      </Text>
      {top ? (
        <KeyRouterContext.Provider value={router}>
          {state.stack.map((d) => (
            // Dialogs under the top one stay mounted, hidden, and keep their state.
            <Box key={d.id} display={d === top ? 'flex' : 'none'} height={bodyHeight}>
              <ActiveDialog
                dialog={d}
                common={{ services, id: d.id, width: columns, height: bodyHeight }}
                pop={() => dispatch({ type: 'pop', id: d.id })}
                loggedIn={() => dispatch({ type: 'loggedIn', id: d.id })}
              />
            </Box>
          ))}
        </KeyRouterContext.Provider>
      ) : (
        <MenuScreen state={state} columns={columns} height={bodyHeight} />
      )}
      <Text color="gray" wrap="truncate-end">
        {fit(` ${where}`, columns - 16).padEnd(columns - 16)}
        {'<Ctrl-C> Quit'.padStart(15)}
      </Text>
    </Box>
  );
}
