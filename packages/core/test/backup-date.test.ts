import { describe, expect, it } from 'vitest';
import { uniqueDate } from '../src/domain/backup-date.js';
import { backupDate, parseBackupDate } from '../src/index.js';

describe('the one backup-date rule (records, conversion and the legacy reader share it)', () => {
  it('reads exactly YYYY-MM-DD-HH-MM-SS as a UTC moment', () => {
    expect(parseBackupDate('2024-02-29-23-59-59')?.toISOString()).toBe('2024-02-29T23:59:59.000Z');
    expect(parseBackupDate('0999-01-01-00-00-00')?.toISOString()).toBe('0999-01-01T00:00:00.000Z');
  });

  it.each([
    ['2023-02-29-00-00-00', 'no 29 February outside a leap year'],
    ['2024-04-31-00-00-00', 'no 31 April'],
    ['2024-13-01-00-00-00', 'no month 13'],
    ['2024-01-00-00-00-00', 'no day 0'],
    ['2024-01-01-24-00-00', 'no hour 24'],
    ['2024-01-01-00-60-00', 'no minute 60'],
    ['2024-01-01-00-00-60', 'no second 60'],
    ['0050-01-01-00-00-00', 'no two-digit year (Date.UTC would read 1950)'],
    ['2024-1-01-00-00-00', 'two digits for the month'],
    ['2024-01-01T00:00:00', 'not an ISO date'],
    ['2024-01-01-00-00-00 ', 'nothing after it'],
    ['latest', 'not a date at all'],
  ])('refuses %s (%s)', (date) => {
    expect(parseBackupDate(date)).toBeNull();
  });

  it('gives back every date that backupDate writes', () => {
    for (const t of [0, 951_782_400_000, 1_709_251_199_000, 4_102_444_800_000]) {
      const d = backupDate(new Date(t));
      expect(parseBackupDate(d)?.getTime()).toBe(t);
    }
  });

  it('a unique date is bumped a second at a time past the dates taken', () => {
    const at = new Date('2024-01-01T00:00:00.400Z');
    expect(uniqueDate(at, new Set(['2024-01-01-00-00-00', '2024-01-01-00-00-01']))).toBe(
      '2024-01-01-00-00-02',
    );
  });

  it('a unique date comes after every date taken, even one freed below them (evicted)', () => {
    // more than one backup a second: dates were bumped ahead of the clock, then the oldest
    // record (dated at the moment) was evicted; the new one must not sort before the rest
    const at = new Date('2024-01-01T00:00:00.400Z');
    const kept = new Set(['2024-01-01-00-00-01', '2024-01-01-00-00-02', 'not a date']);
    expect(uniqueDate(at, kept)).toBe('2024-01-01-00-00-03');
    expect(uniqueDate(at, new Set(['2023-12-31-23-59-59']))).toBe('2024-01-01-00-00-00');
  });
});
