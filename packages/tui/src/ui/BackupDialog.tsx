import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { formatBackupDate, formatBytes } from '../format.js';
import {
  type BackupAction,
  type BackupState,
  type BackupWork,
  backupReducer,
  backupWork,
  initialBackup,
} from '../machines/backup.js';
import type { ConsoleServices } from '../services.js';
import { type DialogProps, useDialogKeys, useMachine } from './dialog.js';
import { SrHeader, srItems } from './sr-list.js';
import { ChoiceList, KeyHelp, Message, Panel, ProgressBar, RingPicture } from './widgets.js';
import { orFailed, useWork } from './work.js';

const BACKUP_TITLE = 'Backup Virtual Machine Metadata';

/** Runs the service call a backup state asks for and reports it as actions. */
async function performBackup(
  services: ConsoleServices,
  work: BackupWork,
  dispatch: (a: BackupAction) => void,
  signal: AbortSignal,
): Promise<void> {
  const { req } = work;
  await orFailed(req, dispatch, async () => {
    switch (work.kind) {
      case 'listSrs':
        dispatch({ type: 'srsLoaded', req, srs: await services.listSrs() });
        return;
      case 'backup': {
        const result = await services.backup(
          work.srUuid,
          (progress) => dispatch({ type: 'progress', req, progress }),
          signal,
        );
        dispatch({ type: 'backupDone', req, result });
        return;
      }
      case 'usage':
        try {
          const { usage } = await services.listBackups(work.srUuid);
          dispatch({ type: 'usageLoaded', req, usage });
        } catch {
          // The picture is a bonus: without it the result still stands.
          dispatch({ type: 'usageLoaded', req, usage: null });
        }
        return;
    }
  });
}

function Body(props: { state: BackupState; width: number; height: number }): ReactNode {
  const { state: s, width } = props;
  const inner = width - 4;
  switch (s.kind) {
    case 'loading':
      return <Text>Looking for storage repositories…</Text>;
    case 'pickSr':
      if (s.srs.length === 0) {
        return (
          <Message tone="warn">No storage repository of this pool can hold a backup disk.</Message>
        );
      }
      return (
        <Box flexDirection="column">
          <Text>Back up the VM metadata to which storage repository?</Text>
          <SrHeader width={inner} purpose="backup" />
          <ChoiceList
            items={srItems(s.srs, inner, 'backup')}
            cursor={s.cursor}
            rows={props.height - 8}
            width={inner}
          />
        </Box>
      );
    case 'confirmCreate':
      return (
        <Box flexDirection="column">
          <Text>
            <Text bold>{s.sr.name}</Text> has no Pool Metadata Backup disk yet.
          </Text>
          <Text>
            One will be created on it ({formatBytes(s.sr.freeBytes)} free), then the backup written
            to it.
          </Text>
        </Box>
      );
    case 'running':
    case 'cancelling':
      return (
        <Box flexDirection="column">
          <Text>
            Backing up metadata to <Text bold>{s.sr.name}</Text>…
          </Text>
          <Text> </Text>
          <Text wrap="truncate-end">{s.progress ? s.progress.phase : 'Starting'}</Text>
          <ProgressBar
            done={s.progress?.done ?? 0}
            total={s.progress?.total ?? 0}
            width={Math.min(inner, 60)}
          />
          <Text color="gray">{formatBytes(s.progress?.bytes ?? 0)} written</Text>
          {s.kind === 'cancelling' ? (
            <Message tone="warn">Stopping… The disk keeps its earlier backups whole.</Message>
          ) : null}
        </Box>
      );
    case 'done': {
      const r = s.result;
      return (
        <Box flexDirection="column">
          <Message tone="ok">Backup Successful</Message>
          <Text>
            Backup #{r.seq} of {formatBackupDate(r.date)} on <Text bold>{s.sr.name}</Text>
          </Text>
          <Text>
            {r.vmCount} VM(s) and {r.templateCount} template(s), {formatBytes(r.storedBytes)} stored
            ({formatBytes(r.rawBytes)} before compression)
          </Text>
          <Text> </Text>
          {typeof s.usage === 'object' ? (
            <RingPicture usage={s.usage} width={inner} selectedSeq={r.seq} />
          ) : s.usage === 'loading' ? (
            <Text color="gray">Reading the backup disk…</Text>
          ) : null}
        </Box>
      );
    }
    case 'failed':
      return (
        <Box flexDirection="column">
          <Message tone="bad">
            {s.cancelled ? 'The backup was stopped: ' : 'Metadata Backup failed: '}
            {s.message}
          </Message>
          {s.sr ? (
            <Text color="gray">The backups already on {s.sr.name} are unchanged.</Text>
          ) : null}
        </Box>
      );
    case 'closed':
      return null;
  }
}

function keysOf(s: BackupState): readonly (readonly [string, string])[] {
  switch (s.kind) {
    case 'loading':
      return [['<Esc>', 'Cancel']];
    case 'pickSr':
      return s.srs.length === 0
        ? [['<Esc>', 'Cancel']]
        : [
            ['<Up/Down>', 'Select'],
            ['<Enter>', 'Backup'],
            ['<Esc>', 'Cancel'],
          ];
    case 'confirmCreate':
      return [
        ['<Enter>', 'Create and Back Up'],
        ['<Esc>', 'Back'],
      ];
    case 'running':
      return [['<Esc>', 'Stop']];
    case 'cancelling':
      return [];
    case 'done':
      return [['<Enter>', 'OK']];
    case 'failed':
      return s.srs.length > 0
        ? [
            ['<Enter>', 'Choose Again'],
            ['<Esc>', 'Close'],
          ]
        : [['<Enter>', 'OK']];
    case 'closed':
      return [];
  }
}

function subtitle(s: BackupState): string {
  switch (s.kind) {
    case 'loading':
    case 'pickSr':
      return 'Select Storage Repository for Backup';
    case 'confirmCreate':
      return 'Create the Backup Disk';
    case 'done':
    case 'failed':
      return 'Result';
    default:
      return 'Backing Up';
  }
}

export function BackupDialog(props: DialogProps): ReactNode {
  const [state, dispatch] = useMachine(backupReducer, () => initialBackup);
  useDialogKeys(props.id, (key) => {
    if (dispatch({ type: 'key', key }).kind === 'closed') props.onClose();
  });
  useWork(backupWork(state), (w, signal) => performBackup(props.services, w, dispatch, signal));
  return (
    <Panel title={`${BACKUP_TITLE} · ${subtitle(state)}`} width={props.width} height={props.height}>
      <Body state={state} width={props.width} height={props.height} />
      <Box flexGrow={1} />
      <KeyHelp keys={keysOf(state)} />
    </Panel>
  );
}
