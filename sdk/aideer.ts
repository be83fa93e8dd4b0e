// The AIDeer client: openapi-fetch over the contract's paths (`/api/v1`), with the bearer token
// wired in, and helpers for what plain openapi-fetch calls do not cover: the OAuth2 password form,
// the avatar upload (multipart) and a task's event stream.
import createClient, { type ClientOptions } from 'openapi-fetch';
import type { components, paths } from '../generated/aideer.client.ts';
import { readEventStream } from './sse.ts';
import { strict } from './strict.ts';

export type {
  components as AideerComponents,
  operations as AideerOperations,
  paths as AideerPaths,
} from '../generated/aideer.client.ts';

/**
 * One event of a task's stream (`TaskStreamData` in the contract): `content` is the whole text so
 * far (replace, do not append); `id` is the event's `id:` line, to pass as `lastEventId` to resume.
 */
export type TaskEvent = components['schemas']['TaskStreamData'] & { id?: components['schemas']['TaskStreamEventId'] };

export interface TaskStreamOptions {
  signal?: AbortSignal;
  /** Resume after this event id (sent as `Last-Event-ID`; it also takes the stream over from an older connection). */
  lastEventId?: string;
  /** After a dropped connection, reconnect with `Last-Event-ID` up to `attempts` times in a row, `delayMs` apart (default 5 and 1000); `false` never. */
  resume?: { attempts?: number; delayMs?: number } | false;
}

/** A dropped task stream that could not be resumed. */
export class TaskStreamLost extends Error {
  constructor(
    message: string,
    readonly response?: Response,
  ) {
    super(message);
    this.name = 'TaskStreamLost';
  }
}

export interface AideerClientOptions extends Omit<ClientOptions, 'baseUrl'> {
  /** The server's origin, e.g. `http://127.0.0.1:8000` (the client adds `/api/v1`). */
  baseUrl: string;
  /** An access token to send as `Authorization: Bearer <token>`; `logIn` sets one too. */
  token?: string;
}

export function createAideerClient({ baseUrl, token, ...options }: AideerClientOptions) {
  const client = strict(createClient<paths>({ ...options, baseUrl: `${baseUrl.replace(/\/+$/, '')}/api/v1` }));
  let current = token;
  client.use({
    onRequest({ request }) {
      // A call that sets its own Authorization (a refresh token, another user's token) keeps it.
      if (current !== undefined && !request.headers.has('Authorization'))
        request.headers.set('Authorization', `Bearer ${current}`);
    },
  });

  function openTaskStream(taskId: string, signal?: AbortSignal, lastEventId?: string) {
    return client.GET('/tasks/{task_id}/stream', {
      params: {
        path: { task_id: taskId },
        header: lastEventId === undefined ? undefined : { 'Last-Event-ID': lastEventId },
      },
      parseAs: 'stream',
      headers: { Accept: 'text/event-stream' },
      signal,
    });
  }
  type StreamRefusal = NonNullable<Awaited<ReturnType<typeof openTaskStream>>['error']>;

  return {
    ...client,

    /** The token sent with every call, if any. */
    get token(): string | undefined {
      return current;
    },

    /** Sends `token` from now on; `undefined` sends none. */
    setToken(next: string | undefined): void {
      current = next;
    },

    /**
     * Logs in with the OAuth2 password form (`application/x-www-form-urlencoded`) and, when it
     * succeeds, sends the new access token with every later call.
     */
    async logIn(username: string, password: string) {
      // openapi-fetch form-encodes the body itself when the call sets this content type.
      const result = await client.POST('/session/oauth2/token', {
        body: { grant_type: 'password', username, password },
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      if (result.data) current = result.data.access_token;
      return result;
    },

    /** Replaces the caller's avatar with an image (any format the server decodes, at most 5 MiB). */
    uploadAvatar(image: Blob, filename = 'avatar') {
      const form = new FormData();
      form.append('avatar_file', image, filename);
      return client.POST('/users/me/avatar', {
        // openapi-typescript reads `format: binary` as a string: the typed body names the field,
        // the form carries the bytes (and fetch sets the multipart boundary).
        body: { avatar_file: filename },
        bodySerializer: () => form,
      });
    },

    /**
     * Opens a task's event stream. On success `data` yields each `{status, content, id}` event
     * until the final `finished` or `failed` one, then ends. A dropped connection (network error,
     * a server shutting down) is resumed by itself with `Last-Event-ID`, on whatever instance the
     * base URL reaches: the events missed come first, none twice; a stream that cannot be resumed
     * throws TaskStreamLost. The loop also ends, without a final event, when another connection
     * took the stream over. Leaving the loop early closes the connection, which frees the task for
     * another reader. A stream opened but not read to its end holds the task until `close()` is
     * called; to reopen a task right after closing its stream, pass the last event id you got
     * (`'0'` for none): that takes the stream over at once. A refusal of the first request (404,
     * 422) is `error`.
     */
    async streamTask(
      taskId: string,
      init: TaskStreamOptions = {},
    ): Promise<
      | { data: AsyncGenerator<TaskEvent, void, undefined>; close(): Promise<void>; error?: never; response: Response }
      | { data?: never; close?: never; error: StreamRefusal; response: Response }
    > {
      const { data, error, response } = await openTaskStream(taskId, init.signal, init.lastEventId);
      if (!response.ok) return { error: error as StreamRefusal, response };
      // openapi-fetch types a stream as fetch's nullable `body`; a 200 event stream always has one.
      let body = data!;
      const reopen = async (lastEventId: string | undefined) => {
        const next = await openTaskStream(taskId, init.signal, lastEventId);
        if (!next.response.ok)
          throw new TaskStreamLost(
            `the task stream could not be resumed: HTTP ${next.response.status} ${JSON.stringify(next.error)}`,
            next.response,
          );
        return (body = next.data!);
      };
      const events = taskEvents(body, init, reopen);
      return {
        data: events,
        async close() {
          // Ends the events (a reader that started cancels the body as it stops); a body nobody
          // started reading is cancelled here. Either way the connection closes.
          await events.return();
          // A stream that already failed (say, aborted) has no connection left to close.
          if (!body.locked) await body.cancel().catch(() => undefined);
        },
        response,
      };
    },
  };
}

export type AideerClient = ReturnType<typeof createAideerClient>;

async function* taskEvents(
  first: ReadableStream<Uint8Array>,
  init: TaskStreamOptions,
  reopen: (lastEventId: string | undefined) => Promise<ReadableStream<Uint8Array>>,
): AsyncGenerator<TaskEvent, void, undefined> {
  const resume =
    init.resume === false ? undefined : { attempts: init.resume?.attempts ?? 5, delayMs: init.resume?.delayMs ?? 1000 };
  let body = first;
  let lastEventId = init.lastEventId;
  let failures = 0;
  for (;;) {
    try {
      for await (const { event, data, id } of readEventStream(body, { dataless: true })) {
        // `close` before a final event: another connection took the stream over.
        if (event === 'close') return;
        if (!data) continue;
        if (id) lastEventId = id;
        failures = 0;
        const taskEvent = JSON.parse(data) as TaskEvent;
        yield id ? { ...taskEvent, id } : taskEvent;
        // The last event: stop here rather than wait for the server (or a proxy) to end the response.
        if (taskEvent.status === 'finished' || taskEvent.status === 'failed') return;
      }
    } catch (err) {
      if (init.signal?.aborted || !resume) throw err;
    }
    // The response ended or broke before the final event: resume after the last event seen.
    for (;;) {
      if (!resume || ++failures > resume.attempts)
        throw new TaskStreamLost(
          `the task stream was lost after ${resume ? resume.attempts : 0} attempts to resume it`,
        );
      await new Promise((resolve) => setTimeout(resolve, resume.delayMs));
      try {
        // Without any event yet, 0: everything the task sent, which also takes over the hold.
        body = await reopen(lastEventId ?? '0');
        break;
      } catch (err) {
        // A refusal (the task is gone) will not change; a network error may.
        if (err instanceof TaskStreamLost || init.signal?.aborted) throw err;
      }
    }
  }
}
