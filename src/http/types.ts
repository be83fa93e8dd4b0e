// Handler types derived from the generated contract types: a handler can only return a status its
// operation documents, with the body documented for that status, so `tsc` catches drift from the spec.
import type { Request } from 'express';

type ResponsesOf<Op> = Op extends { responses: infer R } ? R : never;
export type StatusOf<Op> = Extract<keyof ResponsesOf<Op>, number>;

type ContentOf<R> = R extends { content: infer C } ? C : never;

/** A Server-Sent Events body: the dispatcher opens the stream and hands it over. */
export interface SseBody {
  /** Writes the stream; resolves when it is over. `signal` aborts when the client goes away. */
  run(res: import('node:http').ServerResponse, signal: AbortSignal): Promise<void>;
}

type ResultFor<Op, S extends StatusOf<Op>> =
  ContentOf<ResponsesOf<Op>[S]> extends never
    ? { status: S; body?: undefined; headers?: Record<string, string> }
    : 'application/json' extends keyof ContentOf<ResponsesOf<Op>[S]>
      ? {
          status: S;
          body: ContentOf<ResponsesOf<Op>[S]>['application/json' & keyof ContentOf<ResponsesOf<Op>[S]>];
          headers?: Record<string, string>;
        }
      : 'text/event-stream' extends keyof ContentOf<ResponsesOf<Op>[S]>
        ? { status: S; sse: SseBody; headers?: Record<string, string> }
        : { status: S; body?: undefined; headers?: Record<string, string> };

export type ResultOf<Op> = { [S in StatusOf<Op>]: ResultFor<Op, S> }[StatusOf<Op>];

type ParamsOf<Op, In extends string> = Op extends { parameters: infer P }
  ? P extends { [K in In]?: infer X }
    ? [NonNullable<X>] extends [never]
      ? Record<string, never>
      : NonNullable<X>
    : Record<string, never>
  : Record<string, never>;

type BodyOf<Op> = Op extends { requestBody?: infer B }
  ? [NonNullable<B>] extends [never]
    ? undefined
    : NonNullable<B> extends { content: infer C }
      ? C[keyof C]
      : undefined
  : undefined;

/** What a handler receives: the request as validated (and coerced, defaults applied) by the spec. */
export interface HandlerInput<Op, Auth> {
  params: ParamsOf<Op, 'path'>;
  query: ParamsOf<Op, 'query'>;
  body: BodyOf<Op>;
  /** The result of the operation's security handlers, when it has any. */
  auth: Auth;
  req: Request;
  /** Aborts when the client goes away before the answer is complete. */
  signal: AbortSignal;
}

/** A handler that needs no I/O answers at once; the binding awaits either. */
export type Handler<Op, Auth> = (input: HandlerInput<Op, Auth>) => ResultOf<Op> | Promise<ResultOf<Op>>;

export type HandlerMap<Ops, Auth> = { [K in keyof Ops]: Handler<Ops[K], Auth> };

/** A response that is not produced by an operation handler (errors of routing, auth, validation). */
export interface RawResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
