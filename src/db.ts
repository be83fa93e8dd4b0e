// The only place that knows how to reach the database: SQLite file by default, Postgres by URL.
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { migrationSource } from '../db/migrations/index.ts';

export type Db = Knex;

// Postgres returns bigint (times in ms, counts) as strings; every value we keep fits a double.
pg.types.setTypeParser(20, (v: string) => Number(v));

export interface DbOptions {
  databaseUrl?: string;
  dataDir: string;
  /** Postgres schema to use (tests run in a schema of their own). */
  searchPath?: string;
}

export function isPostgres(db: Knex): boolean {
  return db.client.config.client === 'pg';
}

/**
 * Locks the rows a query reads until the transaction ends, on Postgres. SQLite needs no lock: it
 * runs one writing transaction at a time.
 */
export function forUpdate<Q extends Knex.QueryBuilder>(trx: Knex, query: Q): Q {
  return isPostgres(trx) ? (query.forUpdate() as Q) : query;
}

export function createDb(opts: DbOptions): Knex {
  if (opts.databaseUrl) {
    return knexFactory({
      client: 'pg',
      connection: opts.databaseUrl,
      searchPath: opts.searchPath ? [opts.searchPath] : undefined,
      pool: { min: 0, max: 10 },
      migrations: { migrationSource },
    });
  }
  fs.mkdirSync(opts.dataDir, { recursive: true });
  return knexFactory({
    client: 'better-sqlite3',
    connection: { filename: path.join(opts.dataDir, 'app.db') },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { pragma(s: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
        conn.pragma('journal_mode = WAL');
        conn.pragma('foreign_keys = ON');
        conn.pragma('busy_timeout = 5000');
        conn.pragma('synchronous = NORMAL');
        done(null, conn);
      },
    },
    migrations: { migrationSource },
  });
}

export async function migrate(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}
