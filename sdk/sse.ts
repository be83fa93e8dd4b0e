// A reader for `text/event-stream` bodies over fetch's stream, following the WHATWG parsing rules
// (any line ending, optional space after the colon, multi-line data, comments), so the SDK needs
// no EventSource and no extra package.

export interface ServerSentEvent {
  /** The `event:` field, `message` when the server sent none. */
  event: string;
  /** The `data:` lines, joined by `\n` (empty for an event without any, with `dataless`). */
  data: string;
  /** The last `id:` the stream sent, up to this event (what a reconnect sends as `Last-Event-ID`). */
  id: string;
}

/**
 * The events of a stream as they arrive. Stopping early (`break`, `return()`) cancels the body,
 * which closes the connection: the server sees the client go away. EventSource drops events
 * without data; `dataless` yields those too when they are named (`event: close`).
 */
export async function* readEventStream(
  body: ReadableStream<Uint8Array>,
  options: { dataless?: boolean } = {},
): AsyncGenerator<ServerSentEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let lastId = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const end = buffer.search(/\r\n|\r|\n/);
        // A lone `\r` at the end may be the first half of `\r\n`: wait for the next chunk.
        if (end < 0 || (end === buffer.length - 1 && buffer[end] === '\r' && !done)) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
        if (line === '') {
          if (data.length || (options.dataless && event))
            yield { event: event || 'message', data: data.join('\n'), id: lastId };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(value);
        else if (field === 'event') event = value;
        // An id with NUL is ignored, as EventSource does.
        else if (field === 'id' && !value.includes('\u0000')) lastId = value;
      }
      // An event the stream did not finish with a blank line is dropped, as EventSource does.
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
