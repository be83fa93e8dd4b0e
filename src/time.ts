// Times are stored as epoch milliseconds and sent as ISO-8601 in UTC with `Z` (decision G5). Only
// the years 0000 to 9999 have that form (toISOString writes others as `+010000-...`, which no
// `format: date-time` accepts), so a time from outside is refused before it is stored.

const MIN_SENDABLE_MS = Date.parse('0000-01-01T00:00:00.000Z');
const MAX_SENDABLE_MS = Date.parse('9999-12-31T23:59:59.999Z');

/** An epoch-ms time as the APIs send it. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The epoch-ms time if the APIs can send it back, else undefined (NaN included). */
export function sendableTime(ms: number): number | undefined {
  return ms >= MIN_SENDABLE_MS && ms <= MAX_SENDABLE_MS ? ms : undefined;
}

/**
 * A `format: date-time` text as epoch ms, or undefined when it names no time the APIs can send
 * back: a leap second (`23:59:60`, which the format allows but a JavaScript date cannot hold), or
 * an offset that moves it outside the years 0000 to 9999 in UTC.
 */
export function parseSendableTime(text: string): number | undefined {
  return sendableTime(Date.parse(text));
}
