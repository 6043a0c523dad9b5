import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { fit, formatBackupDate, formatBytes } from '../format.js';
import {
  initialRestore,
  type RestoreState,
  type RestoreVariant,
  restoreReducer,
  restoreWork,
} from '../machines/restore.js';
import { RESTORE_CHOICES, type RestorePoint } from '../machines/restore-choices.js';
import type { RestoreMode } from '../services.js';
import { type DialogProps, useDialogKeys, useMachine } from './dialog.js';
import { RestoreProgress, RestoreSummary } from './RestoreOutcome.js';
import { performRestore } from './restore-perform.js';
import { SrHeader, srItems } from './sr-list.js';
import { ChoiceList, KeyHelp, type ListItem, Message, Panel, RingPicture } from './widgets.js';
import { useWork } from './work.js';

type Keys = readonly (readonly [string, string])[];

const RESTORE_TITLE: Record<RestoreVariant, string> = {
  ring: 'Restore Virtual Machine Metadata',
  legacy: 'Restore from Legacy Backup',
};

function pointItems(points: readonly RestorePoint[], width: number): ListItem[] {
  return points.map((p) => {
    const parts = [
      formatBackupDate(p.date),
      `${String(p.vmCount).padStart(4)} VM(s)`,
      p.templateCount === null ? '' : `${String(p.templateCount).padStart(3)} tmpl`,
      p.storedBytes === null ? '' : formatBytes(p.storedBytes).padStart(10),
      p.damaged !== null
        ? `DAMAGED: ${p.damaged}`
        : p.verified === true
          ? 'verified'
          : p.verified === false
            ? 'FAILED CHECK'
            : p.seq === null
              ? ''
              : 'not checked',
    ].filter((x) => x !== '');
    return {
      key: p.seq === null ? p.date : String(p.seq),
      label: fit(parts.join('  '), width - 2),
      tone: p.damaged !== null || p.verified === false ? 'bad' : 'normal',
    };
  });
}

function modeHelp(
  mode: RestoreMode,
  dryRun: boolean,
  force: boolean,
  s: { sr: { name: string }; point: RestorePoint },
): string {
  const what =
    mode === 'sr'
      ? `Only the VMs whose disks are on ${s.sr.name}.`
      : `Every VM and custom template of the backup (${s.point.vmCount} VM(s)).`;
  if (force) return `${what} A VM that already exists in the pool is replaced by the backup's.`;
  return dryRun ? `${what} Dry run: every check, no change to the pool.` : what;
}

function choiceLabel(mode: RestoreMode, dryRun: boolean, force: boolean): string {
  return (
    RESTORE_CHOICES.find((c) => c.mode === mode && c.dryRun === dryRun && c.force === force)
      ?.label ?? mode
  );
}

function Body(props: { state: RestoreState; width: number; height: number }): ReactNode {
  const { state: s, width, height } = props;
  const inner = width - 4;
  switch (s.kind) {
    case 'loadingSrs':
      return <Text>Looking for storage repositories…</Text>;
    case 'pickSr':
      if (s.srs.length === 0) {
        return <Message tone="warn">This pool has no storage repository to restore from.</Message>;
      }
      return (
        <Box flexDirection="column">
          <Text>Restore from the backups on which storage repository?</Text>
          <SrHeader width={inner} purpose={s.variant === 'ring' ? 'restore' : 'legacy'} />
          <ChoiceList
            items={srItems(s.srs, inner, s.variant === 'ring' ? 'restore' : 'legacy')}
            cursor={s.srCursor}
            rows={height - (s.notice ? 11 : 8)}
            width={inner}
          />
          {s.notice ? (
            <Box marginTop={1}>
              <Message tone="warn">{s.notice}</Message>
            </Box>
          ) : null}
        </Box>
      );
    case 'checkingLegacy':
      return <Text>Checking {s.sr.name} for legacy backup disks…</Text>;
    case 'legacyUnavailable':
      return (
        <Box flexDirection="column">
          <Message tone="warn">Legacy restore is not available on {s.sr.name}.</Message>
          <Text>{s.reason}</Text>
        </Box>
      );
    case 'trustWarning':
      return (
        <Box flexDirection="column">
          <Message tone="warn">Only restore metadata from a disk you trust.</Message>
          <Text>
            A backup disk written by the old scripts carries no proof of where it came from: any VM
            with a disk on {s.sr.name} can write one that looks like a backup, and restoring it
            creates the VMs, disks and networks it names.
          </Text>
          <Text> </Text>
          <Text>Continue only if you trust every disk on this storage repository.</Text>
        </Box>
      );
    case 'loadingPoints':
      return <Text>Reading the backups on {s.sr.name}…</Text>;
    case 'pickPoint': {
      if (s.points.length === 0) {
        return <Message tone="warn">There is no backup on {s.sr.name}.</Message>;
      }
      const selected = s.points[s.pointCursor];
      const damaged = new Set(
        s.points.filter((p) => p.damaged !== null && p.seq !== null).map((p) => p.seq as number),
      );
      const fixed = 6 + (s.usage ? 3 : 0) + (s.notice ? 3 : 0);
      return (
        <Box flexDirection="column">
          <Text>Select the metadata backup to restore from (newest first):</Text>
          <ChoiceList
            items={pointItems(s.points, inner)}
            cursor={s.pointCursor}
            rows={height - fixed}
            width={inner}
          />
          {s.usage ? (
            <Box marginTop={1}>
              <RingPicture
                usage={s.usage}
                width={inner}
                selectedSeq={selected?.seq ?? null}
                damagedSeqs={damaged}
              />
            </Box>
          ) : null}
          {s.notice ? (
            <Box marginTop={1}>
              <Message tone="bad">{s.notice}</Message>
            </Box>
          ) : null}
        </Box>
      );
    }
    case 'pickMode': {
      const choice = RESTORE_CHOICES[s.modeCursor];
      return (
        <Box flexDirection="column">
          <Text>Select the set of VMs to restore from {formatBackupDate(s.point.date)}:</Text>
          <ChoiceList
            items={RESTORE_CHOICES.map((c) => ({ key: c.label, label: c.label }))}
            cursor={s.modeCursor}
            rows={RESTORE_CHOICES.length}
            width={inner}
          />
          <Text> </Text>
          {choice ? (
            <Text color="gray">{modeHelp(choice.mode, choice.dryRun, choice.force, s)}</Text>
          ) : null}
        </Box>
      );
    }
    case 'confirm':
      return (
        <Box flexDirection="column">
          <Text>
            {s.dryRun ? 'Dry run: ' : 'Restore: '}
            <Text bold>{choiceLabel(s.mode, s.dryRun, s.force)}</Text> from the backup of{' '}
            {formatBackupDate(s.point.date)} on {s.sr.name}.
          </Text>
          <Text> </Text>
          {s.dryRun ? (
            <Text>Every check runs; nothing in the pool changes.</Text>
          ) : (
            <Message tone="warn">
              The VMs are created in this pool from their metadata. Their disks must be on storage
              attached to this pool.
            </Message>
          )}
        </Box>
      );
    case 'running':
    case 'cancelling':
      return <RestoreProgress state={s} width={inner} />;
    case 'summary':
      return <RestoreSummary state={s} width={inner} height={height} />;
    case 'failed':
      return <Message tone="bad">Metadata Restore failed: {s.message}</Message>;
    case 'closed':
      return null;
  }
}

function keysOf(s: RestoreState): Keys {
  const pick: Keys = [
    ['<Up/Down>', 'Select'],
    ['<Enter>', 'OK'],
    ['<Esc>', 'Back'],
  ];
  switch (s.kind) {
    case 'loadingSrs':
    case 'checkingLegacy':
    case 'loadingPoints':
      return [['<Esc>', 'Cancel']];
    case 'pickSr':
      return s.srs.length === 0 ? [['<Esc>', 'Close']] : pick;
    case 'legacyUnavailable':
      return [['<Enter>', 'Back']];
    case 'trustWarning':
      return [
        ['<Enter>', 'I Trust These Disks'],
        ['<Esc>', 'Back'],
      ];
    case 'pickPoint':
      return s.points.length === 0 ? [['<Esc>', 'Back']] : pick;
    case 'pickMode':
      return [
        ['<Up/Down>', 'Select'],
        ['<Enter>', 'Restore VMs'],
        ['<Esc>', 'Back'],
      ];
    case 'confirm':
      return [
        ['<Enter>', s.dryRun ? 'Start Dry Run' : 'Restore'],
        ['<Esc>', 'Back'],
      ];
    case 'running':
      return [['<Esc>', 'Stop']];
    case 'cancelling':
    case 'closed':
      return [];
    case 'summary': {
      const keys: [string, string][] = [];
      if (s.errors.length > 1) keys.push(['<Up/Down>', 'Select Failure']);
      if (s.dryRun && !s.cancelled) keys.push(['<Enter>', 'Back to Choices'], ['<Esc>', 'Close']);
      else keys.push(['<Enter>', 'OK']);
      return keys;
    }
    case 'failed':
      return s.back
        ? [
            ['<Enter>', 'Back'],
            ['<Esc>', 'Close'],
          ]
        : [['<Enter>', 'OK']];
  }
}

function subtitle(s: RestoreState): string {
  switch (s.kind) {
    case 'loadingSrs':
    case 'pickSr':
      return 'Select Storage Repository to Restore From';
    case 'checkingLegacy':
    case 'legacyUnavailable':
    case 'trustWarning':
      return 'Legacy Backup Disk';
    case 'loadingPoints':
    case 'pickPoint':
      return 'Available Metadata Backups';
    case 'pickMode':
    case 'confirm':
      return `Restore Backup from ${formatBackupDate(s.point.date)}`;
    case 'running':
    case 'cancelling':
      return 'Restoring';
    default:
      return 'Result';
  }
}

export function RestoreDialog(props: DialogProps & { variant: RestoreVariant }): ReactNode {
  const [state, dispatch] = useMachine(restoreReducer, () => initialRestore(props.variant));
  useDialogKeys(props.id, (key) => {
    if (dispatch({ type: 'key', key }).kind === 'closed') props.onClose();
  });
  useWork(restoreWork(state), (w, signal) => performRestore(props.services, w, dispatch, signal));
  return (
    <Panel
      title={`${RESTORE_TITLE[props.variant]} · ${subtitle(state)}`}
      width={props.width}
      height={props.height}
    >
      <Body state={state} width={props.width} height={props.height} />
      <Box flexGrow={1} />
      <KeyHelp keys={keysOf(state)} />
    </Panel>
  );
}
