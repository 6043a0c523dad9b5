import { describe, expect, it } from 'vitest';
import {
  barCells,
  fit,
  formatBackupDate,
  formatBytes,
  formatInstant,
  percent,
  slotMarks,
  visibleWindow,
} from './format.js';

describe('format', () => {
  it('writes sizes in binary units with three significant digits at most', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(500 * 1024 * 1024)).toBe('500 MiB');
    expect(formatBytes(1200 * 1024 ** 3)).toBe('1.17 TiB');
    expect(formatBytes(-1)).toBe('?');
  });

  it('writes backup dates and instants readably, and leaves anything else as is', () => {
    expect(formatBackupDate('2025-03-01-10-01-00')).toBe('2025-03-01 10:01:00');
    expect(formatBackupDate('latest')).toBe('latest');
    expect(formatInstant('2025-03-08T10:00:00.000+02:00')).toBe('2025-03-08 08:00 UTC');
    expect(formatInstant('soon')).toBe('soon');
  });

  it('writes percentages, never 0% for a non-empty share', () => {
    expect(percent(0, 100)).toBe('0%');
    expect(percent(1, 100_000)).toBe('<0.1%');
    expect(percent(5, 100)).toBe('5%');
    expect(percent(55, 1000)).toBe('5.5%');
    expect(percent(1, 3)).toBe('33%');
    expect(percent(1, 0)).toBe('0%');
  });

  it('cuts text with an ellipsis', () => {
    expect(fit('abcdef', 4)).toBe('abc…');
    expect(fit('abc', 4)).toBe('abc');
    expect(fit('abc', 0)).toBe('');
  });

  it('fills at least one cell once something is done, and all only when all is', () => {
    expect(barCells(0, 10, 20)).toBe(0);
    expect(barCells(1, 1_000_000, 20)).toBe(1);
    expect(barCells(999_999, 1_000_000, 20)).toBe(19);
    expect(barCells(10, 10, 20)).toBe(20);
    expect(barCells(1, 0, 20)).toBe(0);
  });

  it('draws one mark per kept backup, then the free slots', () => {
    const records = [{ seq: 1 }, { seq: 2 }, { seq: 3 }];
    expect(slotMarks(records, 5, 40, 2, new Set([1]))).toEqual([
      'damaged',
      'selected',
      'kept',
      'free',
      'free',
    ]);
  });

  it('groups slots when they outnumber the cells, keeping the selected one visible', () => {
    const records = Array.from({ length: 90 }, (_, i) => ({ seq: i + 1 }));
    const marks = slotMarks(records, 100, 10, 45, new Set());
    expect(marks).toHaveLength(10);
    expect(marks.filter((m) => m === 'selected')).toHaveLength(1);
    expect(marks[9]).toBe('free');
  });

  it('scrolls a list to keep the cursor in view', () => {
    expect(visibleWindow(3, 2, 5)).toEqual({ start: 0, end: 3 });
    expect(visibleWindow(30, 0, 5)).toEqual({ start: 0, end: 5 });
    expect(visibleWindow(30, 15, 5)).toEqual({ start: 13, end: 18 });
    expect(visibleWindow(30, 29, 5)).toEqual({ start: 25, end: 30 });
  });
});
