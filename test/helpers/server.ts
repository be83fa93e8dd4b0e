// Starts the real app in-process on an ephemeral loopback port, on its own database: a fresh
// SQLite folder, or a fresh schema of TEST_DATABASE_URL's Postgres database.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { loadConfig, type Config } from '../../src/config.ts';
import { createDb, migrate } from '../../src/db.ts';
import { createApp, type App } from '../../src/app.ts';
import { createLogger } from '../../src/logger.ts';
import { createHttpServer } from '../../src/http/server.ts';

export const CHECK_HEADER = 'x-contract-check';

/** Test servers sign AIDeer tokens with this key, so tests can mint tokens of their own. */
export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdefghijklmnop';

/** Requests the server answered that no contract check covered (see hooks.ts). */
export const uncheckedRequests: string[] = [];

export interface TestServer {
  url: string;
  db: Knex;
  app: App;
  config: Config;
  close(): Promise<void>;
}

export const usingPostgres = Boolean(process.env.TEST_DATABASE_URL);
export const databaseLabel = usingPostgres ? 'postgres' : 'sqlite';

export interface TestDatabase {
  db: Knex;
  dataDir: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aideer-oneapi-test-'));
  if (!usingPostgres) {
    const db = createDb({ dataDir });
    await migrate(db);
    return {
      db,
      dataDir,
      async drop() {
        await db.destroy();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const schema = `test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: process.env.TEST_DATABASE_URL });
  await admin.raw(`CREATE SCHEMA ${schema}`);
  await admin.destroy();
  const db = createDb({ databaseUrl: process.env.TEST_DATABASE_URL, dataDir, searchPath: schema });
  await migrate(db);
  return {
    db,
    dataDir,
    async drop() {
      await db.destroy();
      // A connection of its own: the test may have shut the database out on purpose.
      const admin = knexFactory({ client: 'pg', connection: process.env.TEST_DATABASE_URL });
      await admin.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.destroy();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Settings for tests: generous limits (tests share one address) unless a test asks otherwise. */
export function testConfig(dataDir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    GLOBAL_RATE_LIMIT: '1000000',
    SIGNIN_RATE_LIMIT: '1000000',
    PHONE_CODE_COOLDOWN_SECONDS: '0',
    BCRYPT_ROUNDS: '4',
    CODE_LOOKUP_RATE_LIMIT: '1000000',
    JWT_SECRET: TEST_JWT_SECRET,
    ...env,
  });
}

export async function startServer(
  env: Record<string, string> = {},
  opts: { database?: TestDatabase } = {},
): Promise<TestServer> {
  const database = opts.database ?? (await createTestDatabase());
  const config = testConfig(database.dataDir, env);
  const app = await createApp({ config, db: database.db, logger: createLogger(config.logLevel) });
  // The server the entry point builds, so tests see what Node answers before the app does.
  const { server, listen } = createHttpServer(
    (req, res) => {
      if (!req.headers[CHECK_HEADER]) uncheckedRequests.push(`${req.method} ${req.url}`);
      app.app(req, res);
    },
    { maxHeaderBytes: config.maxHeaderBytes },
  );
  const { port } = await listen(0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${port}`,
    db: database.db,
    app,
    config,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
      if (!opts.database) await database.drop();
    },
  };
}

let shared: Promise<TestServer> | undefined;

/** One server for the whole run, for tests that need no special settings. */
export function sharedServer(): Promise<TestServer> {
  shared ??= startServer();
  return shared;
}

export async function closeSharedServer(): Promise<void> {
  if (shared) await (await shared).close();
  shared = undefined;
}
