// An incremental `text/event-stream` reader for the contract checks. Unlike an EventSource (and
// the SDK's reader, which follows it), it also yields events that carry no data (`event: open`,
// `event: close`): the contract describes those too, so a checker must see them.
export interface RawStreamEvent {
  event?: string;
  data?: string;
  id?: string;
}

export class EventStreamParser {
  private buffer = '';
  private current: { event?: string; data: string[]; id?: string; fields: number } = { data: [], fields: 0 };

  /** Feeds a chunk of text; returns the events it completed. */
  feed(text: string): RawStreamEvent[] {
    this.buffer += text;
    const done: RawStreamEvent[] = [];
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      // A lone `\r` at the end may be the first half of `\r\n`: wait for more.
      if (end < 0 || (end === this.buffer.length - 1 && this.buffer[end] === '\r')) break;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + (this.buffer.startsWith('\r\n', end) ? 2 : 1));
      if (line === '') {
        const { event, data, id, fields } = this.current;
        if (fields)
          done.push({
            ...(event !== undefined && { event }),
            ...(data.length && { data: data.join('\n') }),
            ...(id !== undefined && { id }),
          });
        this.current = { data: [], fields: 0 };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') this.current.data.push(value);
      else if (field === 'event') this.current.event = value;
      else if (field === 'id') this.current.id = value;
      else if (field !== 'retry') continue;
      this.current.fields++;
    }
    return done;
  }
}

/** Every event of a byte stream, data-less ones included. */
export async function* streamEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<RawStreamEvent, void, undefined> {
  const parser = new EventStreamParser();
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      yield* parser.feed(done ? decoder.decode() + '\n' : decoder.decode(value, { stream: true }));
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
