// A completion in progress: iterate it for the text deltas, then (or instead) await `result()`.
import { LlmError, type ChatResult } from './types.ts';

export class ChatStream implements AsyncIterable<string> {
  private started = false;
  private settle!: { resolve(r: ChatResult): void; reject(e: unknown): void };
  private readonly settled: Promise<ChatResult>;

  /** `source` yields the deltas and returns the result; providers make it throw only LlmError. */
  constructor(
    private readonly provider: string,
    private readonly source: AsyncGenerator<string, ChatResult, undefined>,
  ) {
    this.settled = new Promise<ChatResult>((resolve, reject) => (this.settle = { resolve, reject }));
    // A caller that only iterates and meets the error there need not await result() too.
    this.settled.catch(() => {});
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string, void, undefined> {
    if (this.started) throw new Error(`${this.provider}: a chat stream can be read only once`);
    this.started = true;
    let finished = false;
    try {
      for (;;) {
        const step = await this.source.next();
        if (step.done) {
          finished = true;
          this.settle.resolve(step.value);
          return;
        }
        yield step.value;
      }
    } catch (err) {
      finished = true;
      this.settle.reject(err);
      throw err;
    } finally {
      if (!finished) {
        // The caller stopped reading: end the upstream request too.
        this.settle.reject(new LlmError('cancelled', this.provider, 'the caller stopped reading the stream'));
        // AsyncGenerator.return wants a ChatResult to hand back; it is discarded here, so none is made up.
        await this.source.return(undefined as never);
      }
    }
  }

  /** The whole text and usage; reads the rest of the stream when the caller has not. */
  async result(): Promise<ChatResult> {
    if (!this.started) for await (const _ of this);
    return this.settled;
  }
}
