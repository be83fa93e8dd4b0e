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
    // require() returns any; `pg` is the package its type import names.
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
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  '28P01',
  '28000',
  '3D000',
  '57P03',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_NOTADB',
]);

/** Why the database could not be reached, in one line, when `err` says so; otherwise undefined. */
export function unreachableReason(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e: { code?: unknown; name?: unknown; message?: unknown; errors?: unknown } = err;
  if (e.name === 'KnexTimeoutError') return 'no connection within the time limit';
  if (typeof e.code !== 'string' || !UNREACHABLE.has(e.code)) return undefined;
  // An AggregateError (every address refused) has no message of its own.
  const inner: unknown[] = Array.isArray(e.errors) ? e.errors : [];
  const messageOf = (x: unknown) =>
    typeof x === 'object' && x !== null && 'message' in x && typeof x.message === 'string' ? x.message : '';
  const message = (typeof e.message === 'string' && e.message) || inner.map(messageOf).join('; ');
  return `${e.code}: ${message}`;
}

export function isPostgres(db: Knex): boolean {
  return knexSettings(db).client === 'pg';
}

/** The settings a Knex was made with: its client's name, and the URL or pg's config object. */
export function knexSettings(db: Knex): { client?: unknown; connection?: unknown } {
  // knex types its client as any.
  const client: unknown = db.client;
  const config = typeof client === 'object' && client !== null && 'config' in client ? client.config : undefined;
  return typeof config === 'object' && config !== null ? config : {};
}

/**
 * Locks the rows a query reads until the transaction ends, on Postgres. SQLite needs no lock: it
 * runs one writing transaction at a time.
 */
export function forUpdate<Q extends Knex.QueryBuilder>(trx: Knex, query: Q): Q {
  // knex types forUpdate() as the base QueryBuilder, though it returns the very builder it was called on.
  return isPostgres(trx) ? (query.forUpdate() as Q) : query;
}

/** A statement of a hot path, prepared once per connection. */
export interface Prepared<Row> extends Runs<Row> {
  /**
   * The same statement on `on`: a knex transaction (`trx` of `db.transaction`) or a `transact` one,
   * on that transaction's connection; or another Knex, from its pool.
   */
  in(on: Executor): Runs<Row>;
}

export interface Runs<Row> {
  first(...values: unknown[]): Promise<Row | undefined>;
  all(...values: unknown[]): Promise<Row[]>;
  /** For a statement without RETURNING: how many rows it changed. */
  run(...values: unknown[]): Promise<number>;
}

/** Where a prepared statement runs: a Knex (its pool, or a knex transaction's connection) or a Tx. */
export type Executor = Knex | Tx;

type Pooled = {
  acquireConnection(): Promise<unknown>;
  releaseConnection(c: unknown): Promise<void>;
  emit(event: 'query', q: object): void;
};
type SqliteStatement = {
  reader: boolean;
  all(...values: unknown[]): unknown[];
  run(...values: unknown[]): { changes: number };
  raw(on: boolean): SqliteStatement;
};
type SqliteConnection = { prepare(sql: string): SqliteStatement; inTransaction: boolean };
type PgConnection = {
  query(
    q: string | { name: string; text: string; values: unknown[]; rowMode?: 'array' },
  ): Promise<{ rows: unknown[]; rowCount: number | null; fields: unknown[] }>;
};
type Result = { rows: unknown[]; changes: number };

/**
 * A transaction of `transact`: prepared statements run in it with `statement.in(tx)`. Nothing but
 * prepared statements runs in it (it has no query builder).
 */
export class Tx {
  /** @internal the transaction's connection, as the pool (or knex's transaction client) lends it. */
  readonly client: Pooled;
  private done = false;

  constructor(connection: unknown, pool: Pooled) {
    this.client = {
      acquireConnection: () => {
        if (this.done) return Promise.reject(new Error('Transaction query already complete'));
        return Promise.resolve(connection);
      },
      releaseConnection: async () => {},
      emit: (event, q) => pool.emit(event, q),
    };
  }

  /** @internal */
  end() {
    this.done = true;
  }
}

/** How a statement answers its rows: objects keyed by column, or arrays in the select list's order. */
export interface PrepareOptions {
  /**
   * `array`: each row is an array of its columns, in the select list's order. Drivers make an
   * object per row with a property per column, which dominates a read of many rows and columns.
   * Only for statements that answer rows (a SELECT, or a write with RETURNING): another throws.
   */
  rows?: 'object' | 'array';
}

/** Runs `sql` on a connection: one function per dialect, statements prepared once per connection. */
function runner(
  db: Knex,
  sql: string,
  { rows = 'object' }: PrepareOptions,
): (conn: unknown, values: unknown[]) => Promise<Result> | Result {
  if (isPostgres(db)) {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    // pg prepares a named statement on a connection the first time it sees the name there; the
    // name follows the text, so apps sharing a database share the statement.
    const name = `hot_${crypto.createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    return async (conn, values) => {
      // Knex's pool lends connections untyped; on client 'pg' they are pg Clients.
      const r = await (conn as PgConnection).query(
        rows === 'array' ? { name, text, values, rowMode: 'array' } : { name, text, values },
      );
      if (rows === 'array' && !r.fields.length)
        throw new Error(`prepare: { rows: 'array' } on a statement that returns no rows: ${sql}`);
      return { rows: r.rows, changes: r.rowCount ?? 0 };
    };
  }
  const statements = new WeakMap<SqliteConnection, SqliteStatement>();
  return (conn, values) => {
    // Knex's pool lends connections untyped; on client 'better-sqlite3' they are its Databases.
    const connection = conn as SqliteConnection;
    let statement = statements.get(connection);
    if (!statement) {
      statement = connection.prepare(sql);
      if (rows === 'array') {
        // Only a statement that answers rows (a SELECT, or a write with RETURNING) has any to shape.
        if (!statement.reader)
          throw new Error(`prepare: { rows: 'array' } on a statement that returns no rows: ${sql}`);
        statement.raw(true);
      }
      statements.set(connection, statement);
    }
    // better-sqlite3 binds no booleans (knex stores them as 1 and 0 too).
    for (let i = 0; i < values.length; i++) if (typeof values[i] === 'boolean') values[i] = values[i] ? 1 : 0;
    if (statement.reader) return { rows: statement.all(...values), changes: 0 };
    return { rows: [], changes: statement.run(...values).changes };
  };
}

/**
 * For statements on hot paths (token to user, the writes of a request): knex builds, compiles and
 * prepares each query anew, which costs more than the query itself. `sql` uses `?` placeholders.
 * Without `in`, the connection comes from knex's pool, so a statement never runs inside another
 * request's transaction.
 */
export function prepare<Row>(db: Knex, sql: string, options: PrepareOptions = {}): Prepared<Row> {
  const rows = runner(db, sql, options);
  const exec = async (on: Executor, values: unknown[]): Promise<Result> => {
    if (isKnexTransaction(on) && on.isCompleted()) throw new Error('Transaction query already complete');
    // Knex types its client as any; the pool methods used are those of knex's Client.
    const client = on.client as Pooled;
    const conn = await client.acquireConnection();
    // As knex does for its own queries, so its query listeners see every statement.
    client.emit('query', { sql, bindings: values });
    try {
      return await rows(conn, values);
    } finally {
      await client.releaseConnection(conn);
    }
  };
  const runs = (on: Executor): Runs<Row> => ({
    // The driver's rows are untyped: Row is what the caller's SQL selects (both lines).
    first: async (...values) => (await exec(on, values)).rows[0] as Row | undefined,
    all: async (...values) => (await exec(on, values)).rows as Row[],
    run: async (...values) => (await exec(on, values)).changes,
  });
  return { ...runs(db), in: runs };
}

/** A knex transaction (`trx` of `db.transaction`), rather than a Knex or a Tx. */
function isKnexTransaction(on: Executor): on is Knex.Transaction {
  return !(on instanceof Tx) && Boolean(on.isTransaction);
}

/** BEGIN, COMMIT and ROLLBACK of each database, prepared like any other statement. */
const control = new WeakMap<Knex, { begin: Prepared<never>; commit: Prepared<never>; rollback: Prepared<never> }>();

/**
 * Runs `work` in a transaction on a connection of the pool, committed when it resolves and rolled
 * back when it throws (the error is thrown on). Lighter than knex's `db.transaction`, which builds
 * a knex instance and a client for each one: for hot writes made of prepared statements only.
 */
export async function transact<T>(db: Knex, work: (tx: Tx) => Promise<T>): Promise<T> {
  let c = control.get(db);
  if (!c)
    control.set(
      db,
      (c = { begin: prepare(db, 'BEGIN'), commit: prepare(db, 'COMMIT'), rollback: prepare(db, 'ROLLBACK') }),
    );
  // Knex types its client as any; the pool methods used are those of knex's Client.
  const pool = db.client as Pooled;
  const conn = await pool.acquireConnection();
  const tx = new Tx(conn, pool);
  try {
    await c.begin.in(tx).run();
    let result: T;
    try {
      result = await work(tx);
      await c.commit.in(tx).run();
    } catch (err) {
      await rollback(c.rollback, tx, conn, isPostgres(db));
      throw err;
    }
    return result;
  } finally {
    tx.end();
    await pool.releaseConnection(conn);
  }
}

async function rollback(statement: Prepared<never>, tx: Tx, conn: unknown, pg: boolean): Promise<void> {
  // SQLite ends the transaction itself on some errors (a full disk, say): nothing left to undo.
  // Knex's pool lends connections untyped; on SQLite they are better-sqlite3 Databases.
  if (!pg && !(conn as SqliteConnection).inTransaction) return;
  try {
    await statement.in(tx).run();
  } catch (err) {
    // A connection that cannot roll back is not given to anyone else: the pool drops it.
    // `__knex__disposed` is knex's own internal mark of a broken connection, in no type of its.
    (conn as { __knex__disposed?: unknown }).__knex__disposed = err;
  }
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

/**
 * Empties every table whose name starts with `prefix` (read from the database's own catalogue, so
 * new tables are never missed), in one transaction.
 */
export async function emptyTables(db: Knex, prefix: string): Promise<void> {
  if (!/^[a-z_]+$/.test(prefix)) throw new Error(`unexpected table prefix ${prefix}`);
  const like = `${prefix.replace(/_/g, '\\_')}%`;
  const rows = isPostgres(db)
    ? await db
        .select<{ name: string }[]>('tablename as name')
        .from('pg_tables')
        .whereRaw('schemaname = current_schema()')
        .andWhereRaw(`tablename LIKE ? ESCAPE '\\'`, [like])
    : await db
        .select<{ name: string }[]>('name')
        .from('sqlite_master')
        .where({ type: 'table' })
        .andWhereRaw(`name LIKE ? ESCAPE '\\'`, [like]);
  const tables = rows.map((r) => r.name);
  await db.transaction(async (trx) => {
    if (isPostgres(trx)) await trx.raw(`TRUNCATE ${tables.map((t) => `"${t}"`).join(', ')} CASCADE`);
    else for (const t of tables) await trx(t).delete();
  });
}

export async function migrate(db: Knex): Promise<string[]> {
  // Knex types latest() as Promise<any>; it resolves to [batch number, migration names].
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}
