// The real app built as src/server.ts builds it, counting the statements it sends, from knex's
// query events in this process (outside the code measured): all of them, transactions begun, and
// writes of aideer_tasks. The counts answer the IPC message 'counts'. Used by the stream case and
// the Postgres write-path analysis (BENCH_POOL_MAX sets the pool size there).
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import v8 from 'node:v8';
import { pathToFileURL } from 'node:url';

// BENCH_APP_ROOT: the checkout whose src/ is measured (the bench's --server), this one by default.
const root = process.env.BENCH_APP_ROOT ?? path.join(import.meta.dirname, '..');
const from = <M>(file: string): Promise<M> => import(pathToFileURL(path.join(root, 'src', file)).href) as Promise<M>;
const { loadConfig } = await from<typeof import('../src/config.ts')>('config.ts');
const { createDb } = await from<typeof import('../src/db.ts')>('db.ts');
const { createApp } = await from<typeof import('../src/app.ts')>('app.ts');
const { createLogger } = await from<typeof import('../src/logger.ts')>('logger.ts');

export interface Counts {
  queries: number;
  transactions: number;
  taskWrites: number;
}

const config = loadConfig();
const poolMax = process.env.BENCH_POOL_MAX ? Number(process.env.BENCH_POOL_MAX) : undefined;
// poolMax is ignored by a checkout whose createDb does not know it (then the pool is its default).
const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax });
const counts: Counts = { queries: 0, transactions: 0, taskWrites: 0 };
const WRITES_TASKS = /^\s*(update|insert into)\s+["`]?aideer_tasks["`]?/i;
db.on('query', (q: { sql: string }) => {
  counts.queries++;
  if (/^begin/i.test(q.sql)) counts.transactions++;
  if (WRITES_TASKS.test(q.sql)) counts.taskWrites++;
});
// 'counts' (the default) answers the counts; 'memory' collects garbage first when node runs with
// --expose-gc (the stream case's hold phase), then answers process.memoryUsage(); `{ snapshot: FILE }`
// writes a heap snapshot there.
process.on('message', (m: unknown) => {
  if (m === 'memory') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    return void process.send!({ ...process.memoryUsage(), collected: Boolean(gc) });
  }
  if (m && typeof m === 'object' && 'snapshot' in m)
    return void process.send!({ snapshot: v8.writeHeapSnapshot(String(m.snapshot)) });
  process.send!(counts);
});
const made = await createApp({ config, db, logger: createLogger(config.logLevel) });
const { app } = made;
const server = app.listen(config.port, config.host, () => void (server.address() as AddressInfo));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(
    () =>
      void made
        .close()
        .then(() => db.destroy())
        .then(() => process.exit(0)),
  );
  setTimeout(() => process.exit(0), 3000).unref();
});
