// Small helpers for printing results: aligned tables and number formatting.

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** `sorted` must be sorted ascending; nearest-rank percentile, p in [0, 1]. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** Formats with a precision that suits the magnitude (3 significant digits, no exponent). */
export function num(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return n.toFixed(digits);
}

export function ratio(n: number): string {
  return `${n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`;
}

/** Prints rows as a table; the first row is the header. Numeric-looking cells are right-aligned. */
export function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const numeric = (s: string) => /^[-\d.,×%]+( ?\w+)?$/.test(s);
  for (const [i, row] of rows.entries()) {
    const line = row
      .map((cell, c) => (numeric(cell) && i > 0 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ');
    console.log(`  ${line.trimEnd()}`);
    if (i === 0) console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  }
}
