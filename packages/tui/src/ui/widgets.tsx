import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import {
  barCells,
  fit,
  formatBytes,
  percent,
  type SlotMark,
  slotMarks,
  visibleWindow,
} from '../format.js';
import type { RingUsage } from '../services.js';

/** A boxed pane with a title, as xsconsole draws its panes and dialogues. */
export function Panel(props: {
  title: string;
  width: number;
  height?: number;
  dim?: boolean;
  children: ReactNode;
}): ReactNode {
  return (
    <Box
      flexDirection="column"
      borderStyle="round"
      borderColor={props.dim ? 'gray' : 'cyan'}
      width={props.width}
      {...(props.height === undefined ? {} : { height: props.height })}
      paddingX={1}
      flexShrink={0}
    >
      <Text bold color={props.dim ? 'gray' : 'cyan'} wrap="truncate-end">
        {props.title}
      </Text>
      {props.children}
    </Box>
  );
}

/** `<Enter> OK  <Esc> Back`, xsconsole's key help line. */
export function KeyHelp(props: { keys: readonly (readonly [string, string])[] }): ReactNode {
  return (
    <Box flexWrap="wrap" columnGap={2} marginTop={1}>
      {props.keys.map(([k, what]) => (
        <Text key={k}>
          <Text bold>{k}</Text> {what}
        </Text>
      ))}
    </Box>
  );
}

export interface ListItem {
  readonly key: string;
  readonly label: string;
  /** Shown after the label, dimmed. */
  readonly detail?: string;
  readonly tone?: 'normal' | 'warn' | 'bad' | 'dim';
}

const TONE = { normal: undefined, warn: 'yellow', bad: 'red', dim: 'gray' } as const;

/**
 * A list with a cursor, scrolled to keep the cursor in `rows` lines; the selected line is
 * drawn inverted and marked with `›` (for terminals without colour).
 */
export function ChoiceList(props: {
  items: readonly ListItem[];
  cursor: number;
  rows: number;
  width: number;
}): ReactNode {
  const { items, cursor, width } = props;
  const rows = Math.max(1, props.rows);
  const fitsAll = items.length <= rows;
  const { start, end } = visibleWindow(items.length, cursor, fitsAll ? rows : rows - 1);
  const inner = Math.max(4, width - 2);
  return (
    <Box flexDirection="column">
      {items.slice(start, end).map((item, i) => {
        const selected = start + i === cursor;
        const text = fit(item.detail ? `${item.label}  ${item.detail}` : item.label, inner);
        return (
          <Text
            key={item.key}
            wrap="truncate-end"
            inverse={selected}
            color={TONE[item.tone ?? 'normal']}
          >
            {selected ? '› ' : '  '}
            {text}
          </Text>
        );
      })}
      {fitsAll ? null : (
        <Text color="gray" wrap="truncate-end">
          {`  ${start > 0 ? `↑ ${start} more` : ''}${start > 0 && end < items.length ? '  ' : ''}${
            end < items.length ? `↓ ${items.length - end} more` : ''
          }`}
        </Text>
      )}
    </Box>
  );
}

/** `[█████░░░░░] 3 of 10` */
export function ProgressBar(props: { done: number; total: number; width: number }): ReactNode {
  const label = props.total > 0 ? ` ${props.done} of ${props.total}` : '';
  const cells = Math.max(4, props.width - label.length - 2);
  const full = barCells(props.done, props.total, cells);
  return (
    <Text>
      [<Text color="green">{'█'.repeat(full)}</Text>
      <Text color="gray">{'░'.repeat(cells - full)}</Text>]{label}
    </Text>
  );
}

const SLOT: Record<SlotMark, { ch: string; color?: string; inverse?: boolean }> = {
  kept: { ch: '●', color: 'green' },
  selected: { ch: '●', color: 'cyan', inverse: true },
  damaged: { ch: '✗', color: 'red' },
  free: { ch: '○', color: 'gray' },
};

/**
 * The ring's occupancy: bytes used of the disk, and one mark per kept backup among the
 * slots the ring keeps (the selected backup inverted, damaged ones as ✗).
 */
export function RingPicture(props: {
  usage: RingUsage;
  width: number;
  selectedSeq?: number | null;
  damagedSeqs?: ReadonlySet<number>;
}): ReactNode {
  const { usage } = props;
  const bytesLabel = ` ${formatBytes(usage.used)} of ${formatBytes(usage.capacity)} (${percent(usage.used, usage.capacity)})`;
  const cells = Math.max(8, Math.min(40, props.width - bytesLabel.length - 9));
  const full = barCells(usage.used, usage.capacity, cells);
  const marks = slotMarks(
    usage.records,
    usage.maxRecords,
    cells,
    props.selectedSeq ?? null,
    props.damagedSeqs ?? new Set(),
  );
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        {'Disk  ['}
        <Text color="green">{'█'.repeat(full)}</Text>
        <Text color="gray">{'░'.repeat(cells - full)}</Text>
        {']'}
        {bytesLabel}
      </Text>
      <Text wrap="truncate-end">
        {'Kept  ['}
        {marks.map((m, i) => (
          <Text key={i} color={SLOT[m].color} inverse={SLOT[m].inverse ?? false}>
            {SLOT[m].ch}
          </Text>
        ))}
        {']'}
        {` ${usage.records.length} of ${usage.maxRecords} backups kept`}
      </Text>
    </Box>
  );
}

/** A message in plain words, red for failures. */
export function Message(props: { tone: 'ok' | 'bad' | 'warn'; children: ReactNode }): ReactNode {
  const color = { ok: 'green', bad: 'red', warn: 'yellow' }[props.tone];
  return <Text color={color}>{props.children}</Text>;
}
