// The `tasks` tag: create (with the original's check order), read, delete, and the SSE stream
// (decisions A5–A7).
import type { ServerResponse } from 'node:http';
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import { ADMIN } from '../users.ts';
import type { Chats } from '../chats.ts';
import { chatNotFound } from '../replies.ts';
import { eventOf, type TaskEvent, type Tasks } from '../tasks.ts';

export interface TasksDeps {
  tasks: Tasks;
  chats: Chats;
  pingMs: number;
}

/** How often a stream of a task run by another instance looks at the database. */
const POLL_MS = 300;

const notFound = (id: string) => detail(404, `Task ${id} not found`);

export function tasksHandlers({ tasks, chats, pingMs }: TasksDeps) {
  return {
    createTask: async ({ auth, body }) => {
      const { user } = auth;
      if (user.credits_left <= 0 && user.permission < ADMIN) return detail(402, 'Insufficient credits: Please purchase more credits');
      const chat = await chats.byId(body.chat_id);
      if (!chat) return chatNotFound();
      if (chat.owner_id !== user.id) return detail(403, 'Insufficient permissions: You do not have access to this chat');
      if (body.type === 'image_generation') return detail(422, 'Task type image_generation is not supported');
      const task = await tasks.create(user.id, body.chat_id, body.type);
      if (task === 'tooMany') return detail(429, 'Too many active tasks');
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
      const task = await tasks.get(id);
      if (!task) return notFound(id);
      if (task.status === 'failed') return detail(422, `Task ${id} failed`);
      const res = req.res!;
      // `res.destroyed` stays false when the peer goes away: the signal and the socket tell.
      const holder = await tasks.acquireStream(id, { closed: () => signal.aborted || !res.socket || res.socket.destroyed });
      if (holder === 'gone') return notFound(id);
      if (!holder) return detail(422, `Task ${id} is already being streamed`);
      return {
        status: 200,
        headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' },
        sse: { run: (out, signal) => streamTask(out, signal, { id, holder, titleOnly: task.type === 'title_generation', tasks, pingMs }) },
      };
    },
  } satisfies Partial<AideerHandlers>;
}

/**
 * Writes the stream in the original's format: `event: open`, cumulative `running` events, the final
 * event, `event: close`. A late joiner gets the current state at once; events of a task run here
 * arrive as they happen, those of a task run by another instance by polling the database.
 */
async function streamTask(
  res: ServerResponse,
  signal: AbortSignal,
  opts: { id: string; holder: string; titleOnly: boolean; tasks: Tasks; pingMs: number },
): Promise<void> {
  const { id, holder, tasks } = opts;
  let longest = 0;
  let ended = false;
  let finish!: () => void;
  const over = new Promise<void>((resolve) => (finish = resolve));

  const handle = (event: TaskEvent) => {
    if (ended) return;
    const final = event.status === 'finished' || event.status === 'failed';
    // Running events carry text; title tasks send only their final event.
    if (!final && (opts.titleOnly || !event.content)) return;
    // The text only grows, so a running state no longer than the last one sent is old news (a
    // database read lagging behind an event, or a poll that found nothing new).
    if (!final && event.content!.length <= longest) return;
    if (!final) longest = event.content!.length;
    res.write(`data: ${JSON.stringify({ status: final ? event.status : 'running', content: event.content })}\n\n`);
    if (final) {
      ended = true;
      res.write('event: close\n\n');
      finish();
    }
  };

  res.flushHeaders();
  res.write('event: open\n\n');
  const unsubscribe = tasks.subscribe(id, handle);
  const ping = setInterval(() => {
    res.write(': ping\n\n');
    void tasks.renewStream(id, holder).catch(() => undefined);
  }, opts.pingMs);
  const current = async (): Promise<TaskEvent> => {
    const fresh = tasks.latestEvent(id);
    if (fresh) return fresh;
    const row = await tasks.get(id);
    // Deleted or purged while we watched: nothing more will come.
    return row ? eventOf(row) : { status: 'failed', content: 'The task no longer exists' };
  };
  const look = async () => handle(await current());
  let poll: NodeJS.Timeout | undefined;
  // Shutting down (Tasks.drain): a task run here ends with its final event; any other gets its
  // state so far and `event: close`, so the client can reconnect to another instance.
  const stopOnDrain = tasks.onDrain(() => {
    if (ended || tasks.runsHere(id)) return;
    void current().then((event) => {
      if (ended) return;
      ended = true;
      res.write(`data: ${JSON.stringify({ status: event.status, content: event.content })}\n\nevent: close\n\n`);
      finish();
    }, finish);
  });
  const onAbort = () => finish();
  // The client may have left while the stream was being set up: a listener would never fire then.
  if (signal.aborted) finish();
  else signal.addEventListener('abort', onAbort);
  try {
    await look();
    if (!ended && !tasks.runsHere(id)) poll = setInterval(() => void look().catch(() => undefined), POLL_MS);
    await over;
  } finally {
    signal.removeEventListener('abort', onAbort);
    clearInterval(ping);
    clearInterval(poll);
    unsubscribe();
    stopOnDrain();
    await tasks.releaseStream(id, holder).catch(() => undefined);
    if (!res.writableEnded) res.end();
  }
}
