// Task events between instances on Postgres: one LISTEN connection per process, whatever the number
// of streams. Payloads name a task and what changed (`<id>:<seq>` for events up to that id,
// `<id>:hold` for a stream taken over), never text: NOTIFY is capped at 8,000 bytes, and the row
// holds the text anyway.
import type pg from 'pg';
import type { Knex } from 'knex';
import { postgresDriver } from '../../db.ts';
import { messageOf, type Logger } from '../../logger.ts';

export const TASK_CHANNEL = 'aideer_task_events';

export type TaskSignal = { taskId: string; seq: number } | { taskId: string; hold: true };

export function parseSignal(payload: string): TaskSignal | undefined {
  const cut = payload.lastIndexOf(':');
  if (cut < 0) return undefined;
  const taskId = payload.slice(0, cut);
  const what = payload.slice(cut + 1);
  if (what === 'hold') return { taskId, hold: true };
  const seq = Number(what);
  return Number.isSafeInteger(seq) ? { taskId, seq } : undefined;
}

/** Sends a signal; inside a transaction it is delivered when the transaction commits. */
export async function notifyTask(db: Knex, taskId: string, what: number | 'hold'): Promise<void> {
  await db.raw('select pg_notify(?, ?)', [TASK_CHANNEL, `${taskId}:${what}`]);
}

/**
 * Keeps one connection listening, reconnecting after a loss; `onReconnect` runs after each
 * reconnection, since signals sent while it was down are lost.
 */
export class TaskListener {
  private client?: pg.Client;
  private stopped = false;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly connection: string | pg.ClientConfig,
    private readonly handlers: { onSignal(signal: TaskSignal): void; onReconnect(): void },
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {}

  async start(): Promise<void> {
    await this.connect(false);
  }

  private async connect(again: boolean): Promise<void> {
    const client = new (postgresDriver().Client)(
      typeof this.connection === 'string' ? { connectionString: this.connection } : this.connection,
    );
    client.on('notification', (msg) => {
      const signal = msg.payload ? parseSignal(msg.payload) : undefined;
      if (signal) this.handlers.onSignal(signal);
    });
    client.on('error', (err) => {
      this.logger.warn({ err: err.message }, 'task event listener lost its connection; reconnecting');
      this.lost(client);
    });
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${TASK_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (!again) throw err;
      this.logger.warn({ err: messageOf(err) }, 'task event listener could not reconnect; retrying');
      this.schedule();
      return;
    }
    if (this.stopped) return void (await client.end().catch(() => undefined));
    this.client = client;
    if (again) this.handlers.onReconnect();
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.connect(true);
    }, this.retryMs);
    this.retry.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
