// The real server as its own process (src/server.ts under tsx), for tests of what only a process
// shows: signals, exit codes, crashes and restarts, start-up refusals. Each gets a database of its
// own: a fresh SQLite folder, or a fresh Postgres database on TEST_DATABASE_URL's server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { Knex } from 'knex';
import { createDb } from '../../src/db.ts';
import { ROOT } from '../../src/spec.ts';
import { TEST_JWT_SECRET, usingPostgres } from './server.ts';
import { createPostgresDatabase } from './postgres.ts';

export const SERVER_ENTRY = path.join(ROOT, 'src/server.ts');

export interface ProcessDatabase {
  /** DATA_DIR, and DATABASE_URL on Postgres, for the server process. */
  env: Record<string, string>;
  /** A connection of the test's own, to look at what the server stored. */
  db: Knex;
  drop(): Promise<void>;
}

export async function createProcessDatabase(): Promise<ProcessDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aideer-oneapi-proc-'));
  if (!usingPostgres) {
    const db = createDb({ dataDir });
    return {
      env: { DATA_DIR: dataDir },
      db,
      async drop() {
        await db.destroy();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const own = await createPostgresDatabase(process.env.TEST_DATABASE_URL!, 'proc');
  const db = createDb({ databaseUrl: own.url, dataDir });
  return {
    env: { DATA_DIR: dataDir, DATABASE_URL: own.url },
    db,
    async drop() {
      await db.destroy();
      await own.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Settings for a server process: test mode, generous limits, a free port on loopback. */
export function processEnv(env: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    GLOBAL_RATE_LIMIT: '1000000',
    SIGNIN_RATE_LIMIT: '1000000',
    CODE_LOOKUP_RATE_LIMIT: '1000000',
    PHONE_CODE_COOLDOWN_SECONDS: '0',
    BCRYPT_ROUNDS: '4',
    JWT_SECRET: TEST_JWT_SECRET,
    FEED_SAMPLE: 'false',
    LLM_ECHO_DELAY_MS: '0',
    ...env,
  };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process was seen to exit. */
  at: number;
}

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  /** http://127.0.0.1:<port>, once the server logged that it serves. */
  url: string;
  /** The JSON log lines so far. */
  logs: Record<string, unknown>[];
  stderr(): string;
  exited: Promise<Exit>;
  /** Resolves with the first log line whose `msg` starts with `prefix`. */
  untilLog(prefix: string): Promise<Record<string, unknown>>;
}

/** Spawns `command` (node on the entry point by default) and waits until it serves, or exits. */
export async function spawnServer(
  env: Record<string, string>,
  command: string[] = [process.execPath, '--import', 'tsx', SERVER_ENTRY],
  opts: { detached?: boolean } = {},
): Promise<ServerProcess> {
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached,
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { prefix: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      for (const w of waiters.splice(0)) {
        if (String(entry.msg).startsWith(w.prefix)) w.resolve(entry);
        else waiters.push(w);
      }
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const untilLog = (prefix: string) => {
    const found = logs.find((l) => String(l.msg).startsWith(prefix));
    return found
      ? Promise.resolve(found)
      : new Promise<Record<string, unknown>>((resolve) => waiters.push({ prefix, resolve }));
  };
  const serving = await Promise.race([untilLog('serving'), exited]);
  if (!('msg' in serving))
    throw new Error(`the server exited (${String(serving.code ?? serving.signal)}) before serving: ${stderr}`);
  return { child, pid: child.pid!, url: String(serving.url), logs, stderr: () => stderr, exited, untilLog };
}

/** Whether a process with this pid exists and has not exited (a zombie waiting to be reaped has). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // The state follows the parenthesised command name in /proc/<pid>/stat.
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Whether nothing accepts connections at `url`'s port on loopback any more. */
export function refusesConnections(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.on('connect', () => (socket.destroy(), resolve(false)));
    socket.on('error', () => resolve(true));
  });
}
