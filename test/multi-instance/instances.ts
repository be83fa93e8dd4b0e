// Real server processes on one Postgres database of their own, for the multi-instance test and
// scripts/multi-instance-figures.ts: each instance is `node src/server.ts` on an ephemeral port.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import knexFactory, { type Knex } from 'knex';
import { postgresDriver } from '../../src/db.ts';
import { ROOT } from '../../src/spec.ts';
import { createPostgresDatabase } from '../helpers/postgres.ts';

export const POSTGRES_URL =
  process.env.CI_POSTGRES_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.CI_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestPostgres {
  url: string;
  db: Knex;
  drop(): Promise<void>;
}

/** A database created for this run (and dropped after it), on the CI Postgres server. */
export async function createPostgres(): Promise<TestPostgres> {
  const own = await createPostgresDatabase(POSTGRES_URL, 'mi');
  // Read bigints as numbers, as the server does.
  postgresDriver();
  const db = knexFactory({ client: 'pg', connection: own.url, pool: { min: 0, max: 4 } });
  return {
    url: own.url,
    db,
    async drop() {
      await db.destroy();
      await own.drop();
    },
  };
}

export interface Instance {
  name: string;
  url: string;
  process: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Settings every instance must share (see the README's "Running several instances"). */
export function sharedEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    JWT_SECRET: 'multi-instance-jwt-secret-0123456789abcdef',
    ONEAPI_SECRET: 'multi-instance-oneapi-secret-0123',
    TRUST_PROXY: 'true',
    PHONE_CODE_MODE: 'fixed',
    PHONE_CODE_COOLDOWN_SECONDS: '0',
    GLOBAL_RATE_LIMIT: '10000000',
    BCRYPT_ROUNDS: '4',
    FEED_SAMPLE: 'false',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** Starts `src/server.ts` on port 0 and resolves with the URL it logs once it serves. */
export async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `mi-${name}-`));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/server.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.tmpdir(),
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const stderr: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`instance ${name} did not start within 30 s: ${stderr.join('')}`)),
      30_000,
    );
    void exited.then(() => reject(new Error(`instance ${name} exited at start-up: ${stderr.join('')}`)));
    // Every line is read (the pipe must never fill up); the `serving` line gives the address.
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.includes('"url"')) return;
      try {
        const entry = JSON.parse(line) as { url?: string };
        if (entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a log line of ours
      }
    });
  });
  return {
    name,
    url,
    process: child,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
