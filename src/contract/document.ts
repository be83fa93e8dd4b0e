// What the contract checker and the conformance runner read of an OpenAPI 3.1 document, typed.
// Only the fields they use are named; the rest of a node is kept as `unknown`.

export type Method = 'get' | 'put' | 'post' | 'delete' | 'patch' | 'head' | 'options' | 'trace';
export const METHODS: readonly Method[] = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

export interface Schema {
  $ref?: string;
  type?: string | string[];
  format?: string;
  example?: unknown;
  [keyword: string]: unknown;
}

export interface Parameter {
  $ref?: string;
  in?: string;
  name?: string;
  required?: boolean;
  schema?: Schema;
}

export interface MediaType {
  schema?: Schema;
  example?: unknown;
  examples?: Record<string, { value?: unknown }>;
  /** Ours: the schema each server-sent event of a `text/event-stream` body matches. */
  'x-sse-events'?: Schema;
}

export interface ResponseObject {
  $ref?: string;
  headers?: Record<string, { required?: boolean }>;
  content?: Record<string, MediaType>;
}

export type SecurityRequirement = Record<string, string[]>;

export interface Operation {
  operationId: string;
  tags?: string[];
  parameters?: Parameter[];
  requestBody?: { $ref?: string; required?: boolean; content?: Record<string, MediaType> };
  security?: SecurityRequirement[];
  responses?: Record<string, ResponseObject>;
}

export type PathItem = { parameters?: Parameter[] } & { [M in Method]?: Operation };

export interface OpenApiDocument {
  openapi: string;
  jsonSchemaDialect?: string;
  info: { title: string; version: string; [field: string]: unknown };
  paths: Record<string, PathItem>;
  security?: SecurityRequirement[];
  components?: Record<string, unknown>;
}

const isRecord = (node: unknown): node is Record<string, unknown> => typeof node === 'object' && node !== null;

/** The node a local `$ref` (`#/components/...`) points to, or undefined when it points nowhere. */
export function resolve<T extends Parameter | ResponseObject | Schema>(
  doc: OpenApiDocument,
  ref: string,
): T | undefined {
  let node: unknown = doc;
  for (const key of ref.replace(/^#\//, '').split('/')) {
    node = isRecord(node) ? node[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  }
  // A $ref stands where its target belongs (a parameter's, a response's, a schema's place): the
  // document is checked by `redocly lint` in CI and by openapi-backend when the server starts.
  return isRecord(node) ? (node as T) : undefined;
}

/** A node in place, or the one its `$ref` names. */
export function deref<T extends Parameter | ResponseObject | Schema>(doc: OpenApiDocument, node: T): T | undefined {
  return node.$ref ? resolve<T>(doc, node.$ref) : node;
}
