import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { formatInstant } from '../format.js';
import {
  FREQUENCIES,
  initialSchedule,
  type ScheduleAction,
  type ScheduleState,
  type ScheduleWork,
  scheduleReducer,
  scheduleWork,
} from '../machines/schedule.js';
import type { ConsoleServices, ScheduleStatus } from '../services.js';
import { type DialogProps, useDialogKeys, useMachine } from './dialog.js';
import { ChoiceList, KeyHelp, Message, Panel } from './widgets.js';
import { orFailed, useWork } from './work.js';

const SCHEDULE_TITLE = 'Schedule Regular Metadata Backup';

/** Runs the service call a schedule state asks for and reports it as actions. */
async function performSchedule(
  services: ConsoleServices,
  work: ScheduleWork,
  dispatch: (a: ScheduleAction) => void,
): Promise<void> {
  const { req } = work;
  await orFailed(req, dispatch, async () => {
    if (work.kind === 'get') {
      dispatch({ type: 'loaded', req, schedule: await services.getSchedule() });
    } else {
      await services.setSchedule(work.frequency);
      // Read it back: the next run time is the services' to compute.
      dispatch({ type: 'saved', req, schedule: await services.getSchedule() });
    }
  });
}

/** "currently set to occur weekly", and when it runs next and how the last run went. */
function Current(props: { view: ScheduleStatus }): ReactNode {
  const v = props.view;
  return (
    <Box flexDirection="column">
      <Text>
        {v.frequency === 'never'
          ? 'Scheduled metadata backups are currently disabled.'
          : `Scheduled metadata backups are currently set to occur ${v.frequency}.`}
      </Text>
      {v.frequency !== 'never' ? (
        <Text>
          Next run: {v.nextRunAt ? formatInstant(v.nextRunAt) : 'not planned yet'}
          {v.srUuid
            ? `, to SR ${v.srName ? `${v.srName} (${v.srUuid})` : v.srUuid}`
            : ", to the pool's default SR"}
        </Text>
      ) : null}
      {v.lastRun ? (
        <Text color={v.lastRun.outcome === 'success' ? 'green' : 'red'} wrap="truncate-end">
          Last run: {formatInstant(v.lastRun.at)},{' '}
          {v.lastRun.outcome === 'success'
            ? 'succeeded'
            : `failed: ${v.lastRun.error ?? 'no reason given'}`}
        </Text>
      ) : (
        <Text color="gray">No scheduled backup has run yet.</Text>
      )}
    </Box>
  );
}

function Body(props: { state: ScheduleState; width: number }): ReactNode {
  const s = props.state;
  switch (s.kind) {
    case 'loading':
      return <Text>Reading the schedule…</Text>;
    case 'pick':
    case 'saving':
      return (
        <Box flexDirection="column">
          <Current view={s.current} />
          <Text> </Text>
          <Text>Please select the desired frequency:</Text>
          <ChoiceList
            items={FREQUENCIES.map((f) => ({
              key: f.frequency,
              label: f.label,
              ...(f.frequency === s.current.frequency ? { detail: '(current)' } : {}),
            }))}
            cursor={s.cursor}
            rows={FREQUENCIES.length}
            width={props.width - 4}
          />
          {s.kind === 'saving' ? <Text>Saving…</Text> : null}
        </Box>
      );
    case 'saved':
      return (
        <Box flexDirection="column">
          <Message tone="ok">
            {s.schedule.frequency === 'never'
              ? 'Metadata Backup Schedule successfully disabled.'
              : `Metadata Backup Schedule successfully changed to occur ${s.schedule.frequency}.`}
          </Message>
          <Text> </Text>
          <Current view={s.schedule} />
        </Box>
      );
    case 'failed':
      return <Message tone="bad">The schedule could not be changed: {s.message}</Message>;
    case 'closed':
      return null;
  }
}

function keysOf(s: ScheduleState): readonly (readonly [string, string])[] {
  switch (s.kind) {
    case 'pick':
      return [
        ['<Up/Down>', 'Select'],
        ['<Enter>', 'OK'],
        ['<Esc>', 'Cancel'],
      ];
    case 'loading':
      return [['<Esc>', 'Cancel']];
    case 'saved':
      return [['<Enter>', 'OK']];
    case 'failed':
      return s.back
        ? [
            ['<Enter>', 'Back'],
            ['<Esc>', 'Close'],
          ]
        : [['<Enter>', 'OK']];
    default:
      return [];
  }
}

export function ScheduleDialog(props: DialogProps): ReactNode {
  const [state, dispatch] = useMachine(scheduleReducer, () => initialSchedule);
  useDialogKeys(props.id, (key) => {
    if (dispatch({ type: 'key', key }).kind === 'closed') props.onClose();
  });
  useWork(scheduleWork(state), (w) => performSchedule(props.services, w, dispatch));
  return (
    <Panel title={SCHEDULE_TITLE} width={props.width} height={props.height}>
      <Body state={state} width={props.width} />
      <Box flexGrow={1} />
      <KeyHelp keys={keysOf(state)} />
    </Panel>
  );
}
