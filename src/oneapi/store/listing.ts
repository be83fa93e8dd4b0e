// What a store's list reads take and give: one window of rows, and how many there are in all.
import type { Knex } from 'knex';

/** The rows to skip and how many to read after them (http/paging.ts makes one of a request). */
export interface Slice {
  size: number;
  offset: number;
}

export interface Listed<Row> {
  rows: Row[];
  total: number;
}

/** A count as the driver answers it: a number, or on some drivers a numeric string. */
export function counted(rows: { total?: string | number }[]): number {
  return Number(rows[0]?.total ?? 0);
}

/** The slice of a list, newest first; ties (rows of one millisecond) by id, newest first too. */
export function newestFirst<Q extends Knex.QueryBuilder>(query: Q, slice: Slice): Q {
  void query
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(slice.size)
    .offset(slice.offset);
  return query;
}
