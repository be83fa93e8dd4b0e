// Times are stored as epoch milliseconds and sent as ISO-8601 in UTC with `Z` (decision G5). Only
// the years 0000 to 9999 have that form (toISOString writes others as `+010000-...`, which no
// `format: date-time` accepts), so a time from outside is refused before it is stored.

const MIN_SENDABLE_MS = Date.parse('0000-01-01T00:00:00.000Z');
const MAX_SENDABLE_MS = Date.parse('9999-12-31T23:59:59.999Z');

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

/**
 * An epoch-ms time as the APIs send it: what `new Date(ms).toISOString()` writes. A list of chats
 * sends about thirty times, and the Date object and its formatting cost four times this arithmetic
 * (the civil date of a day number, proleptic Gregorian as JavaScript's: H. Hinnant's
 * `civil_from_days`). Times outside the sendable years, and non-integers, go to the Date itself.
 */
export function iso(ms: number): string {
  if (!(ms >= MIN_SENDABLE_MS && ms <= MAX_SENDABLE_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  // Days since 0000-03-01, in 400-year eras of 146,097 days; years start in March so the leap day ends them.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const ms3 = millis < 10 ? `00${millis}` : millis < 100 ? `0${millis}` : String(millis);
  const two = TWO_DIGITS;
  return `${two[Math.floor(year / 100)]}${two[year % 100]}-${two[month]}-${two[day]}T${two[hours]}:${two[minutes]}:${two[seconds]}.${ms3}Z`;
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
