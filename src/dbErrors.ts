// Recognises database errors the same way on SQLite and Postgres.

/** The column whose unique constraint the error broke, or undefined for any other error. */
export function uniqueViolation(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e: { code?: unknown; message?: unknown; detail?: unknown } = err;
  if (e.code === '23505') {
    const m = /Key \(([^)]+)\)=/.exec(typeof e.detail === 'string' ? e.detail : '');
    return m ? lastOf(m[1], ',').trim().replace(/"/g, '') : '';
  }
  const message = typeof e.message === 'string' ? e.message : '';
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_CONSTRAINT') && /UNIQUE|PRIMARY KEY/.test(message)) {
    const m = /constraint failed: (.+)$/.exec(message);
    return m ? lastOf(m[1], ',').trim().split('.').pop() : '';
  }
  return undefined;
}

/** What follows the last `separator` in `text` (all of it when there is none), as split().pop() gives. */
function lastOf(text: string, separator: string): string {
  return text.slice(text.lastIndexOf(separator) + 1);
}

/** True when the error is a broken foreign key: the referenced row is gone (or never existed). */
export function foreignKeyViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  return err.code === '23503' || err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
