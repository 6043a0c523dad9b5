import { restoreSummaryLine } from '@xsmeta/core';
import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { formatBackupDate } from '../format.js';
import type { RestoreState } from '../machines/restore.js';
import { ChoiceList, Message, ProgressBar } from './widgets.js';

type Of<K extends RestoreState['kind']> = Extract<RestoreState, { kind: K }>;

/** The reader's notes shown under a restore's summary; the CLI prints them all. */
const NOTES_SHOWN = 3;

/** A restore under way: the progress bar and the VMs done last, each with its outcome. */
export function RestoreProgress(props: {
  state: Of<'running' | 'cancelling'>;
  width: number;
}): ReactNode {
  const { state: s, width: inner } = props;
  return (
    <Box flexDirection="column">
      <Text>
        {s.dryRun ? 'Checking' : 'Restoring'} VM metadata from {formatBackupDate(s.point.date)}
        {s.dryRun ? ' (dry run)' : ''}…
      </Text>
      <ProgressBar done={s.done} total={s.total} width={Math.min(inner, 60)} />
      <Text> </Text>
      {s.recent.map((v) => (
        <Text key={`${v.vmUuid}-${v.done}`} wrap="truncate-end" color={v.ok ? undefined : 'red'}>
          {v.ok ? '✓ ' : '✗ '}
          {v.name}
          {v.ok ? '' : `: ${v.error ?? 'failed'}`}
        </Text>
      ))}
      {s.kind === 'cancelling' ? (
        <Message tone="warn">Stopping after the VM under way…</Message>
      ) : null}
    </Box>
  );
}

/** A restore's end: the summary line, the reader's notes, and each failed VM in full. */
export function RestoreSummary(props: {
  state: Of<'summary'>;
  width: number;
  height: number;
}): ReactNode {
  const { state: s, width: inner, height } = props;
  const selected = s.errors[s.errorCursor];
  return (
    <Box flexDirection="column">
      <Message tone={s.errors.length === 0 ? 'ok' : 'bad'}>
        {restoreSummaryLine(s.restored, s.errors.length)}
      </Message>
      {s.dryRun ? <Text color="gray">Dry run: nothing in the pool was changed.</Text> : null}
      {s.cancelled ? (
        <Message tone="warn">
          {'Stopped before the end: this counts the VMs finished so far.'}
        </Message>
      ) : null}
      {s.notes.length > 0 ? (
        <Box flexDirection="column" marginTop={1}>
          <Message tone="warn">
            {`Reading the backup, ${s.notes.length} thing(s) were left out or doubted:`}
          </Message>
          {s.notes.slice(0, NOTES_SHOWN).map((n) => (
            <Text key={n} wrap="truncate-end">
              {n}
            </Text>
          ))}
          {s.notes.length > NOTES_SHOWN ? (
            <Text color="gray">{`… and ${s.notes.length - NOTES_SHOWN} more (xsmeta legacy list shows them all)`}</Text>
          ) : null}
        </Box>
      ) : null}
      {selected ? (
        <Box flexDirection="column" marginTop={1}>
          <ChoiceList
            items={s.errors.map((e) => ({
              key: e.vmUuid,
              label: `✗ ${e.name}: ${e.message}`,
              tone: 'bad',
            }))}
            cursor={s.errorCursor}
            rows={height - 16}
            width={inner}
          />
          {/* The selected failure in full: a list line cuts long messages. */}
          <Box flexDirection="column" marginTop={1}>
            <Text bold wrap="truncate-end">
              {selected.name} ({selected.vmUuid})
            </Text>
            <Text>{selected.message}</Text>
          </Box>
        </Box>
      ) : null}
    </Box>
  );
}
