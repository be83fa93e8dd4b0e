// The `tasks` tag: create (with the original's check order), read, delete, and the SSE stream
// (decisions A5–A7).
import type { ServerResponse } from 'node:http';
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import { chatNotFound } from '../replies.ts';
import type { Tasks } from '../../domain/tasks.ts';
import { eventsAfter, type EventLog, type StreamConnection, type TaskEvent } from '../../domain/taskEvents.ts';

export interface TasksDeps {
  tasks: Tasks;
  pingMs: number;
}

const notFound = (id: string) => detail(404, `Task ${id} not found`);

const refusals = {
  noCredits: () => detail(402, 'Insufficient credits: Please purchase more credits'),
  chatNotFound,
  forbidden: () => detail(403, 'Insufficient permissions: You do not have access to this chat'),
  unsupported: () => detail(422, 'Task type image_generation is not supported'),
  tooMany: () => detail(429, 'Too many active tasks'),
};

export function tasksHandlers({ tasks, pingMs }: TasksDeps) {
  return {
    createTask: async ({ auth, body }) => {
      const task = await tasks.create(auth.user, body.chat_id, body.type);
      if (typeof task === 'string') return refusals[task]();
      return { status: 200, body: { task_id: task.id, status: task.status } };
    },

    readTask: async ({ params }) => {
      const task = await tasks.get(params.task_id);
      return task ? { status: 200, body: { task_id: task.id, status: task.status } } : notFound(params.task_id);
    },

    deleteTask: async ({ params }) => {
      const outcome = await tasks.delete(params.task_id);
      if (outcome === 'notFound') return notFound(params.task_id);
      if (outcome !== 'ok') return detail(422, `Cannot delete task ${params.task_id} with status ${outcome}`);
      return { status: 200, body: { message: `Task ${params.task_id} deleted successfully` } };
    },

    streamTask: async ({ params, req, signal }) => {
      const id = params.task_id;
      // Validated against the spec (digits only): the id of the last event the client got.
      const header = req.get('last-event-id');
      const resumeAfter = header === undefined ? undefined : Number(header);
      const task = await tasks.get(id);
      if (!task) return notFound(id);
      // A client resuming may have missed the failure itself: it gets the events it missed.
      if (task.status === 'failed' && resumeAfter === undefined) return detail(422, `Task ${id} failed`);
      const res = req.res!;
      const stream = new TaskStream(res, signal, resumeAfter);
      // A request with Last-Event-ID is the same client coming back: it takes the stream over.
      const acquired = await tasks.acquireStream(id, stream, resumeAfter !== undefined);
      if (acquired === 'gone') return notFound(id);
      if (acquired === 'held') return detail(422, `Task ${id} is already being streamed`);
      const { holder } = acquired;
      return {
        status: 200,
        headers: {
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-cache',
          Connection: 'keep-alive',
          'X-Accel-Buffering': 'no',
        },
        sse: { run: (_out, signal) => stream.run(signal, { id, holder, tasks, pingMs }) },
      };
    },
  } satisfies Partial<AideerHandlers>;
}

/**
 * One stream in the original's format, with ids: `event: open`, cumulative `running` events, the
 * final event, `event: close`. Each data event carries `id:`; a client with Last-Event-ID gets the
 * events after it, one without gets the current state at once; then both follow.
 */
class TaskStream implements StreamConnection {
  private started = false;
  private ended = false;
  private cursor: number | undefined;
  private endedBy?: 'takeover' | 'drain';
  private finish!: () => void;
  private readonly over = new Promise<void>((resolve) => (this.finish = resolve));

  constructor(
    private readonly res: ServerResponse,
    private readonly signal: AbortSignal,
    after: number | undefined,
  ) {
    this.cursor = after;
  }

  // `res.destroyed` stays false when the peer goes away: the signal and the socket tell.
  closed(): boolean {
    return this.signal.aborted || !this.res.socket || this.res.socket.destroyed;
  }

  update(log: EventLog | null): void {
    if (!this.started || this.ended) return;
    // Deleted or purged while we watched: nothing more will come.
    if (!log) return this.send({ id: (this.cursor ?? 0) + 1, status: 'failed', content: 'The task no longer exists' });
    for (const event of eventsAfter(log, this.cursor)) {
      this.send(event);
      if (this.ended) return;
    }
    // The final id is at or below ours when this client got events its runner never stored (the
    // runner died or lost its claim before writing them): the final state still goes out, next id.
    if (log.final) this.send({ ...log.final, id: (this.cursor ?? 0) + 1 });
  }

  end(why: 'takeover' | 'drain'): void {
    if (this.ended) return;
    this.endedBy = why;
    // Taken over: `close` tells this client not to resume. Drained: no close, so it resumes elsewhere.
    if (why === 'takeover' && this.started && !this.res.writableEnded) this.res.write('event: close\n\n');
    this.stop();
  }

  private stop(): void {
    this.ended = true;
    this.finish();
  }

  private send(event: TaskEvent): void {
    if (this.res.writableEnded) return;
    this.cursor = event.id;
    const final = event.status === 'finished' || event.status === 'failed';
    this.res.write(
      `id: ${event.id}\ndata: ${JSON.stringify({ status: final ? event.status : 'running', content: event.content })}\n\n`,
    );
    if (final) {
      this.res.write('event: close\n\n');
      this.stop();
    }
  }

  async run(
    signal: AbortSignal,
    { id, holder, tasks, pingMs }: { id: string; holder: string; tasks: Tasks; pingMs: number },
  ): Promise<void> {
    const { res } = this;
    res.flushHeaders();
    res.write('event: open\n\n');
    this.started = true;
    if (this.endedBy === 'takeover') res.write('event: close\n\n');
    // The hold is renewed by Tasks for all streams at once; the comment keeps proxies from closing this one.
    const ping = setInterval(() => res.write(': ping\n\n'), pingMs);
    const onAbort = () => this.stop();
    // The client may have left while the stream was being set up: a listener would never fire then.
    if (signal.aborted) this.stop();
    else signal.addEventListener('abort', onAbort);
    try {
      if (!this.ended) this.update(await tasks.currentLog(id));
      await this.over;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(ping);
      await tasks.releaseStream(id, holder).catch(() => undefined);
      if (!res.writableEnded) res.end();
    }
  }
}
