import { describe, expect, it } from 'vitest';
import { dueSlot, latestSlot, nextSlot, type UtcOffset } from '../src/index.js';

/** Europe/Paris-like rules: +60, +120 from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC. */
const paris: UtcOffset = (at) => {
  const y = at.getUTCFullYear();
  const lastSunday = (m: number) => {
    const d = new Date(Date.UTC(y, m + 1, 0, 1));
    d.setUTCDate(d.getUTCDate() - d.getUTCDay());
    return d.getTime();
  };
  return at.getTime() >= lastSunday(2) && at.getTime() < lastSunday(9) ? 120 : 60;
};
const iso = (d: Date | null) => d?.toISOString() ?? null;

describe('schedule slots', () => {
  it('daily, weekly (Sunday), monthly (the 1st) at 02:00 UTC', () => {
    const now = new Date('2026-01-31T12:00:00Z');
    expect(iso(nextSlot('daily', now))).toBe('2026-02-01T02:00:00.000Z');
    expect(iso(latestSlot('daily', now))).toBe('2026-01-31T02:00:00.000Z');
    expect(iso(nextSlot('weekly', now))).toBe('2026-02-01T02:00:00.000Z');
    expect(iso(latestSlot('weekly', now))).toBe('2026-01-25T02:00:00.000Z');
    expect(iso(nextSlot('monthly', now))).toBe('2026-02-01T02:00:00.000Z');
    expect(iso(nextSlot('monthly', new Date('2026-12-15T00:00:00Z')))).toBe(
      '2027-01-01T02:00:00.000Z',
    );
    expect(iso(latestSlot('monthly', new Date('2026-03-01T01:59:59Z')))).toBe(
      '2026-02-01T02:00:00.000Z',
    );
    expect(nextSlot('never', now)).toBeNull();
  });

  it('month ends: Feb 28 and leap-year Feb 29 roll to the 1st', () => {
    expect(iso(nextSlot('daily', new Date('2028-02-28T03:00:00Z')))).toBe(
      '2028-02-29T02:00:00.000Z',
    );
    expect(iso(nextSlot('daily', new Date('2027-02-28T03:00:00Z')))).toBe(
      '2027-03-01T02:00:00.000Z',
    );
  });

  it('follows local time across DST changes', () => {
    // Before the spring change 02:00 Paris is 01:00 UTC, after it 00:00 UTC.
    expect(iso(nextSlot('daily', new Date('2026-03-27T12:00:00Z'), paris))).toBe(
      '2026-03-28T01:00:00.000Z',
    );
    expect(iso(nextSlot('daily', new Date('2026-03-29T12:00:00Z'), paris))).toBe(
      '2026-03-30T00:00:00.000Z',
    );
    // On the day of the autumn change.
    expect(iso(nextSlot('daily', new Date('2026-10-24T12:00:00Z'), paris))).toBe(
      '2026-10-25T01:00:00.000Z',
    );
    expect(iso(nextSlot('daily', new Date('2026-10-25T12:00:00Z'), paris))).toBe(
      '2026-10-26T01:00:00.000Z',
    );
  });

  it('a missed slot gives one catch-up run, never a storm', () => {
    // Machine off for ten days: one due slot (the newest), then nothing until the next.
    const now = new Date('2026-05-11T09:00:00Z');
    const due = dueSlot('daily', '2026-05-01T02:00:00.000Z', now);
    expect(due).toBe('2026-05-11T02:00:00.000Z');
    expect(dueSlot('daily', due, now)).toBeNull();
    expect(dueSlot('daily', due, new Date('2026-05-12T02:00:00Z'))).toBe(
      '2026-05-12T02:00:00.000Z',
    );
    expect(dueSlot('never', null, now)).toBeNull();
    // A slot before the schedule was set is not owed.
    expect(dueSlot('daily', null, now, undefined, '2026-05-11T08:00:00.000Z')).toBeNull();
    expect(
      dueSlot(
        'daily',
        null,
        new Date('2026-05-12T03:00:00Z'),
        undefined,
        '2026-05-11T08:00:00.000Z',
      ),
    ).toBe('2026-05-12T02:00:00.000Z');
  });
});
