// Operations that are specified but whose handlers have not landed yet. Each answers 501 in its
// API's error shape. The list shrinks as issues land; a test checks it equals the set of operations
// whose spec documents a 501, and `tsc` refuses an entry whose operation does not document one.
import type { operations as AideerOperations } from '../generated/aideer.ts';
import type { operations as OneApiOperations } from '../generated/oneapi.ts';
import type { OperationsWith501, RawResult } from './http/types.ts';

export const notImplemented = {
  aideer: [
  ] as const satisfies readonly OperationsWith501<AideerOperations>[],
  oneapi: [
  ] as const satisfies readonly OperationsWith501<OneApiOperations>[],
};

// Its result is a 501, which the lists above guarantee each operation documents.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NotImplementedHandler = ((input: any) => Promise<never>) & { notImplemented: true };

/** Handlers answering 501 for the listed operations. */
export function notImplementedHandlers<const K extends string>(operationIds: readonly K[], result: () => RawResult): Record<K, NotImplementedHandler> {
  const out = {} as Record<K, NotImplementedHandler>;
  for (const id of operationIds) {
    out[id] = Object.assign(async () => result() as never, { notImplemented: true as const });
  }
  return out;
}
