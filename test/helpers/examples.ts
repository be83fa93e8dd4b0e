// Builds a well-formed request for any operation from the spec's own examples, so tests can sweep
// every operation (501 while unimplemented, 413, 429, 500 ...) without a hand-written list.
import type { Contract } from './contract.ts';
import type { ApiName } from '../../src/spec.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const BASES: Record<ApiName, string> = { aideer: '/api/v1', oneapi: '/api' };

export interface ExampleRequest {
  api: ApiName;
  operationId: string;
  method: string;
  url: string;
  query: Record<string, string>;
  contentType?: string;
  body?: unknown;
  /** Every way to call it needs credentials. */
  secured: boolean;
  /** Credentials are checked when sent (even if optional). */
  acceptsToken: boolean;
  responses: Record<string, Json>;
}

function deref(doc: Json, node: Json | undefined): Json | undefined {
  let n = node;
  while (n && typeof n === 'object' && '$ref' in n) {
    n = String(n.$ref)
      .replace(/^#\//, '')
      .split('/')
      .reduce((acc: Json, k) => acc[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  }
  return n;
}

function exampleOf(doc: Json, holder: Json | undefined): unknown {
  if (!holder) return undefined;
  if (holder.example !== undefined) return holder.example;
  if (holder.examples && typeof holder.examples === 'object' && !Array.isArray(holder.examples)) {
    const first = Object.values<Json>(holder.examples)[0];
    return deref(doc, first)?.value;
  }
  const schema = deref(doc, holder.schema);
  if (schema?.example !== undefined) return schema.example;
  if (Array.isArray(schema?.examples)) return schema.examples[0];
  if (schema?.default !== undefined) return schema.default;
  if (schema?.format === 'uuid') return '3fa85f64-5717-4562-b3fc-2c963f66afa6';
  if (schema?.type === 'integer') return 1;
  return 'x';
}

export function exampleRequests(contract: Contract): ExampleRequest[] {
  return contract.operations().map((op) => {
    const doc = contract.docs[op.api];
    const { operation } = op;
    const params: Json[] = [...op.pathParameters, ...(operation.parameters ?? [])].map((p: Json) => deref(doc, p)!);
    let path = op.template;
    const query: Record<string, string> = {};
    for (const p of params) {
      const value = String(exampleOf(doc, p));
      if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(value));
      if (p.in === 'query' && p.required) query[p.name] = value;
    }
    const requestBody = deref(doc, operation.requestBody);
    const [contentType, media] = requestBody ? Object.entries<Json>(requestBody.content)[0] : [];
    const security: Json[] = operation.security ?? doc.security ?? [];
    return {
      api: op.api,
      operationId: op.operationId,
      method: op.method,
      url: `${BASES[op.api]}${path}`,
      query,
      contentType,
      body: media ? exampleOf(doc, media) : undefined,
      secured: security.length > 0 && security.every((req) => Object.keys(req).length > 0),
      acceptsToken: security.some((req) => Object.keys(req).length > 0),
      responses: op.responses,
    };
  });
}
