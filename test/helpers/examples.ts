// Builds a well-formed request for any operation from the spec's own examples, so tests can sweep
// every operation (501 while unimplemented, 413, 429, 500 ...) without a hand-written list.
import type { Contract } from './contract.ts';
import type { ApiName } from '../../src/spec.ts';
import {
  deref,
  resolve,
  type MediaType,
  type OpenApiDocument,
  type Parameter,
  type ResponseObject,
} from '../../src/contract/document.ts';

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
  responses: Record<string, ResponseObject>;
}

function exampleOf(doc: OpenApiDocument, holder: MediaType | Parameter | undefined): unknown {
  if (!holder) return undefined;
  if ('example' in holder && holder.example !== undefined) return holder.example;
  if ('examples' in holder && holder.examples) {
    const first = Object.values(holder.examples)[0];
    // An example may stand in components/examples; resolve() reads any node the $ref names.
    const named = first && '$ref' in first && typeof first.$ref === 'string' ? resolve(doc, first.$ref) : first;
    return named && 'value' in named ? named.value : undefined;
  }
  const schema = holder.schema && deref(doc, holder.schema);
  if (schema?.example !== undefined) return schema.example;
  if (Array.isArray(schema?.examples)) return (schema.examples as unknown[])[0];
  if (schema?.default !== undefined) return schema.default;
  if (schema?.format === 'uuid') return '3fa85f64-5717-4562-b3fc-2c963f66afa6';
  if (schema?.type === 'integer') return 1;
  return 'x';
}

export function exampleRequests(contract: Contract): ExampleRequest[] {
  return contract.operations().map((op) => {
    const doc = contract.docs[op.api];
    const { operation } = op;
    const params = [...op.pathParameters, ...(operation.parameters ?? [])].flatMap((p) => deref(doc, p) ?? []);
    let path = op.template;
    const query: Record<string, string> = {};
    for (const p of params) {
      const value = String(exampleOf(doc, p));
      if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(value));
      if (p.in === 'query' && p.required && p.name) query[p.name] = value;
    }
    const requestBody = operation.requestBody?.$ref
      ? resolve<{ content?: Record<string, MediaType> }>(doc, operation.requestBody.$ref)
      : operation.requestBody;
    const [contentType, media] = Object.entries(requestBody?.content ?? {})[0] ?? [];
    const security = operation.security ?? doc.security ?? [];
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
