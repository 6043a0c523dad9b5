/** Pure text helpers for the console's views. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** `1536` -> `1.5 KiB`; `0` -> `0 B`; three significant digits at most. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  const text = v.toFixed(digits).replace(/\.0+$|(\.\d*[1-9])0+$/, '$1');
  return `${text} ${UNITS[u]}`;
}

/** A backup's `YYYY-MM-DD-HH-MM-SS` -> `YYYY-MM-DD HH:MM:SS`; anything else as is. */
export function formatBackupDate(date: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})-(\d{2})-(\d{2})-(\d{2})$/.exec(date);
  return m ? `${m[1]} ${m[2]}:${m[3]}:${m[4]}` : date;
}

/** An ISO 8601 instant -> `YYYY-MM-DD HH:MM UTC`; anything unreadable as is. */
export function formatInstant(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = new Date(t).toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 16)} UTC`;
}

/** `n` of `total` as a percentage with one decimal, `0%` for an empty total. */
export function percent(n: number, total: number): string {
  if (total <= 0) return '0%';
  const p = (n / total) * 100;
  if (p > 0 && p < 0.1) return '<0.1%';
  return `${p < 10 ? p.toFixed(1).replace(/\.0$/, '') : Math.round(p).toString()}%`;
}

/** Cut `s` to `width` columns, marking the cut with an ellipsis. */
export function fit(s: string, width: number): string {
  if (width <= 0) return '';
  const chars = Array.from(s);
  if (chars.length <= width) return s;
  return `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** A bar of `width` cells, `filled` of them proportional to done/total (never 0 when done > 0). */
export function barCells(done: number, total: number, width: number): number {
  if (width <= 0 || total <= 0 || done <= 0) return 0;
  if (done >= total) return width;
  return Math.min(width - 1, Math.max(1, Math.round((done / total) * width)));
}

/** One cell of the ring's slot strip. */
export type SlotMark = 'kept' | 'selected' | 'damaged' | 'free';

/**
 * The ring's slots as a strip of at most `width` cells: one mark per kept backup, oldest
 * first, then the free slots. When there are more slots than cells, a cell stands for
 * several slots and shows the most telling of them (selected, then damaged, then kept).
 */
export function slotMarks(
  records: readonly { readonly seq: number }[],
  maxRecords: number,
  width: number,
  selectedSeq: number | null,
  damagedSeqs: ReadonlySet<number>,
): SlotMark[] {
  const slots = Math.max(maxRecords, records.length);
  if (slots === 0 || width <= 0) return [];
  const marks: SlotMark[] = [];
  for (let i = 0; i < slots; i++) {
    const r = records[i];
    if (!r) marks.push('free');
    else if (r.seq === selectedSeq) marks.push('selected');
    else if (damagedSeqs.has(r.seq)) marks.push('damaged');
    else marks.push('kept');
  }
  if (slots <= width) return marks;
  const rank: Record<SlotMark, number> = { free: 0, kept: 1, damaged: 2, selected: 3 };
  const per = Math.ceil(slots / width);
  const out: SlotMark[] = [];
  for (let i = 0; i < slots; i += per) {
    const group = marks.slice(i, i + per);
    out.push(group.reduce((a, b) => (rank[b] > rank[a] ? b : a), 'free'));
  }
  return out;
}

/** The rows of a list of `length` items to show in `rows` lines so that `cursor` is visible. */
export function visibleWindow(
  length: number,
  cursor: number,
  rows: number,
): { start: number; end: number } {
  if (rows <= 0) return { start: 0, end: 0 };
  if (length <= rows) return { start: 0, end: length };
  const start = Math.min(Math.max(0, cursor - Math.floor(rows / 2)), length - rows);
  return { start, end: start + rows };
}
