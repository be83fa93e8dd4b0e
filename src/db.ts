// The only place that knows how to reach the database: SQLite file by default, Postgres by URL.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import knexFactory, { type Knex } from 'knex';
import type pgModule from 'pg';
import { migrationSource } from '../db/migrations/index.ts';
import type { Logger } from './logger.ts';

export type Db = Knex;

let pg: typeof pgModule | undefined;

/**
 * The `pg` package, loaded when a Postgres database is used (knex loads the same module), not on
 * every start-up: on SQLite nothing needs it, and importing it cost a few percent of a cold start.
 */
export function postgresDriver(): typeof pgModule {
  if (!pg) {
    pg = createRequire(import.meta.url)('pg') as typeof pgModule;
    // Postgres returns bigint (times in ms, counts) as strings; every value we keep fits a double.
    pg.types.setTypeParser(20, (v: string) => Number(v));
  }
  return pg;
}

export interface DbOptions {
  databaseUrl?: string;
  dataDir: string;
  /** Postgres schema to use (tests run in a schema of their own). */
  searchPath?: string;
  /** Where knex's own warnings go (by default it prints them, stack and all, on the console). */
  logger?: Logger;
  /** Postgres pool size (default 10); the bench varies it to find what limits writes. */
  poolMax?: number;
}

/** The database in words for messages: host, port and name, never the credentials. */
export function describeDatabase(opts: Pick<DbOptions, 'databaseUrl' | 'dataDir'>): string {
  if (!opts.databaseUrl) return `SQLite file ${path.join(opts.dataDir, 'app.db')}`;
  const u = new URL(opts.databaseUrl);
  return `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname.length > 1 ? u.pathname : ''}`;
}

// Errors that say the database cannot be reached or entered, as opposed to a fault of ours.
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', '28P01', '28000', '3D000', '57P03', 'SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_NOTADB']);

/** Why the database could not be reached, in one line, when `err` says so; otherwise undefined. */
export function unreachableReason(err: unknown): string | undefined {
  const e = err as { code?: string; name?: string; message?: string; errors?: { message?: string }[] };
  if (e?.name === 'KnexTimeoutError') return 'no connection within the time limit';
  if (!e?.code || !UNREACHABLE.has(e.code)) return undefined;
  const message = e.message || (e.errors ?? []).map((x) => x.message).join('; ');
  return `${e.code}: ${message}`;
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

/** A statement of a hot lookup, prepared once per connection. */
export interface Prepared<Row> {
  first(...values: unknown[]): Promise<Row | undefined>;
  all(...values: unknown[]): Promise<Row[]>;
}

type Pooled = { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void>; emit(event: 'query', q: object): void };
type SqliteStatement = { all(...values: unknown[]): unknown[] };
type PgConnection = { query(q: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }> };

/**
 * For the lookups every request makes (token to user): knex builds, compiles and prepares each
 * query anew, which costs more than the query itself. `sql` uses `?` placeholders. The connection
 * comes from knex's pool, so a lookup never runs inside another request's transaction.
 */
export function prepare<Row>(db: Knex, sql: string): Prepared<Row> {
  const pool = db.client as Pooled;
  let rows: (conn: unknown, values: unknown[]) => Promise<unknown[]> | unknown[];
  if (isPostgres(db)) {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    // pg prepares a named statement on a connection the first time it sees the name there; the
    // name follows the text, so apps sharing a database share the statement.
    const name = `hot_${crypto.createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    rows = async (conn, values) => (await (conn as PgConnection).query({ name, text, values })).rows;
  } else {
    const statements = new WeakMap<object, SqliteStatement>();
    rows = (conn, values) => {
      let statement = statements.get(conn as object);
      if (!statement) statements.set(conn as object, (statement = (conn as { prepare(sql: string): SqliteStatement }).prepare(sql)));
      return statement.all(...values);
    };
  }
  const all = async (values: unknown[]) => {
    const conn = await pool.acquireConnection();
    // As knex does for its own queries, so its query listeners see every statement.
    pool.emit('query', { sql, bindings: values });
    try {
      return (await rows(conn, values)) as Row[];
    } finally {
      await pool.releaseConnection(conn);
    }
  };
  return {
    first: async (...values) => (await all(values))[0],
    all: (...values) => all(values),
  };
}

export function createDb(opts: DbOptions): Knex {
  if (opts.databaseUrl) {
    postgresDriver();
    return knexFactory({
      client: 'pg',
      connection: opts.databaseUrl,
      searchPath: opts.searchPath ? [opts.searchPath] : undefined,
      pool: { min: 0, max: opts.poolMax ?? 10 },
      migrations: { migrationSource },
      log: knexLog(opts.logger),
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
    log: knexLog(opts.logger),
  });
}

function knexLog(logger: Logger | undefined): Knex.Config['log'] {
  if (!logger) return undefined;
  return {
    // A failed connection also rejects the query that wanted it, and is reported there.
    warn: (message: string) => logger.debug({ knex: message }, 'knex warning'),
    error: (message: string) => logger.error({ knex: message }, 'knex error'),
    deprecate: (method: string, alternative: string) => logger.warn({ method, alternative }, 'knex deprecation'),
    debug: (message: string) => logger.debug({ knex: message }, 'knex debug'),
  };
}

export async function migrate(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}
