// The AIDeer client: openapi-fetch over the contract's paths (`/api/v1`), with the bearer token
// wired in, and helpers for what plain openapi-fetch calls do not cover: the OAuth2 password form,
// the avatar upload (multipart) and a task's event stream.
import createClient, { type ClientOptions } from 'openapi-fetch';
import type { components, paths } from '../generated/aideer.client.ts';
import { readEventStream } from './sse.ts';
import { strict } from './strict.ts';

export type { components as AideerComponents, operations as AideerOperations, paths as AideerPaths } from '../generated/aideer.client.ts';

/** One event of a task's stream (`TaskStreamData` in the contract): `content` is the whole text so far. */
export type TaskEvent = components['schemas']['TaskStreamData'];

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
      if (current !== undefined && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${current}`);
    },
  });

  function openTaskStream(taskId: string, signal?: AbortSignal) {
    return client.GET('/tasks/{task_id}/stream', { params: { path: { task_id: taskId } }, parseAs: 'stream', headers: { Accept: 'text/event-stream' }, signal });
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
     * Opens a task's event stream. On success `data` yields each `{status, content}` event until
     * the final `finished` or `failed` one, then ends; leaving the loop early closes the
     * connection, which frees the task for another reader. A stream opened but not read to its
     * end (never iterated, or left outside a loop) holds the task until `close()` is called. A
     * refusal (404, 422) is `error`.
     */
    async streamTask(
      taskId: string,
      init: { signal?: AbortSignal } = {},
    ): Promise<{ data: AsyncGenerator<TaskEvent, void, undefined>; close(): Promise<void>; error?: never; response: Response } | { data?: never; close?: never; error: StreamRefusal; response: Response }> {
      const { data, error, response } = await openTaskStream(taskId, init.signal);
      if (!response.ok) return { error: error as StreamRefusal, response };
      // openapi-fetch types a stream as fetch's nullable `body`; a 200 event stream always has one.
      const body = data!;
      const events = taskEvents(body);
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

async function* taskEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<TaskEvent, void, undefined> {
  // Every event with data is a task event: the stream's `event: open` and `event: close` carry no
  // data, and readEventStream yields no event without any.
  for await (const { data } of readEventStream(body)) {
    const taskEvent = JSON.parse(data) as TaskEvent;
    yield taskEvent;
    // The last event: stop here rather than wait for the server (or a proxy) to end the response.
    if (taskEvent.status === 'finished' || taskEvent.status === 'failed') return;
  }
}
