// Recognises database errors the same way on SQLite and Postgres.

/** The column whose unique constraint the error broke, or undefined for any other error. */
export function uniqueViolation(err: unknown): string | undefined {
  const e = err as { code?: string; message?: string; detail?: string };
  if (e?.code === '23505') {
    const m = /Key \(([^)]+)\)=/.exec(e.detail ?? '');
    return m ? m[1].split(',').pop()!.trim().replace(/"/g, '') : '';
  }
  if (typeof e?.code === 'string' && e.code.startsWith('SQLITE_CONSTRAINT') && /UNIQUE|PRIMARY KEY/.test(e.message ?? '')) {
    const m = /constraint failed: (.+)$/.exec(e.message ?? '');
    return m ? m[1].split(',').pop()!.trim().split('.').pop() : '';
  }
  return undefined;
}

/** True when the error is a broken foreign key: the referenced row is gone (or never existed). */
export function foreignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '23503' || e?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
