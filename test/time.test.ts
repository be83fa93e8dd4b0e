// Every time the APIs send goes through `iso` (src/time.ts), which formats by arithmetic rather than
// through a Date: it must write exactly what `toISOString` writes, across all the years it serves.
import { expect } from 'chai';
import { iso } from '../src/time.ts';

const MIN = Date.parse('0000-01-01T00:00:00.000Z');
const MAX = Date.parse('9999-12-31T23:59:59.999Z');

/** A fixed sequence (xorshift), so a failure names the same times on every run. */
function* times(count: number): Generator<number> {
  let x = 0x9e3779b9;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const y = x >>> 0;
    // Two draws make one time anywhere in the range, to the millisecond.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield MIN + Math.floor(((y * 2 ** 32 + (x >>> 0)) / 2 ** 64) * (MAX - MIN + 1));
  }
}

describe('the times the APIs send (iso)', () => {
  it('when a time is anywhere in the years 0000 to 9999, then iso writes what toISOString writes', () => {
    const wrong: string[] = [];
    for (const ms of times(200_000)) if (iso(ms) !== new Date(ms).toISOString()) wrong.push(`${ms}: ${iso(ms)}`);
    expect(wrong.slice(0, 5)).to.deep.equal([]);
  });

  it('when a time is at an edge (the range, leap days, century years, the epoch, each unit rolling over), then iso writes what toISOString writes', () => {
    const edges = [
      MIN,
      MIN + 1,
      MAX,
      MAX - 1,
      0,
      -1,
      1,
      999,
      1000,
      59_999,
      60_000,
      3_599_999,
      3_600_000,
      86_399_999,
      86_400_000,
      ...[
        '0000-02-29',
        '0100-03-01',
        '0400-02-29',
        '1600-02-29',
        '1700-03-01',
        '1900-02-28',
        '1900-03-01',
        '1969-12-31',
        '2000-02-29',
        '2000-03-01',
        '2024-12-31',
        '2100-03-01',
        '9996-02-29',
      ].flatMap((d) => [Date.parse(`${d}T00:00:00.000Z`), Date.parse(`${d}T23:59:59.999Z`)]),
    ];
    for (const ms of edges) expect(iso(ms), String(ms)).to.equal(new Date(ms).toISOString());
  });

  it('when a time cannot be sent (outside the years, fractional, not a number), then iso answers as a Date does', () => {
    for (const ms of [MAX + 1, MIN - 1, 8.64e15, -8.64e15, 1.5, -0.5])
      expect(iso(ms), String(ms)).to.equal(new Date(ms).toISOString());
    expect(() => iso(Number.NaN)).to.throw(RangeError);
  });
});
