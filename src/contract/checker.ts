// The contract check, shared by the test suite (test/helpers/contract.ts) and the conformance
// runner (src/contract/cli.ts), written apart from the server's own routing and validation: it
// reads the two YAML documents and answers whether a response is one the spec describes
// (documented status, matching content type, body valid against the schema, required headers
// present, each server-sent event valid against its `x-sse-events` schema). It also records which
// operation × status pairs were exercised.
import fs from 'node:fs';
import { parse } from 'yaml';
import { createAjv2020 } from '../http/ajv.ts';
import { SPEC_FILES, type ApiName } from '../spec.ts';
import {
  METHODS,
  resolve,
  type MediaType,
  type Method,
  type Operation,
  type Parameter,
  type OpenApiDocument,
  type ResponseObject,
} from './document.ts';

export { resolve } from './document.ts';

interface Op {
  api: ApiName;
  operationId: string;
  method: Method;
  template: string;
  /** The operation as the document has it, and its path item's parameters. */
  operation: Operation;
  pathParameters: Parameter[];
  regex: RegExp;
  params: number;
  responses: Record<string, { pointer: string; response: ResponseObject }>;
}

const API_BASES: [ApiName, string][] = [
  ['aideer', '/api/v1'],
  ['oneapi', '/api'],
];
// Served beside the APIs but not operations of either contract (src/docs.ts); /docs and /redoc
// lie outside both API bases anyway.
const OUTSIDE_CONTRACT = new Set(['/api/v1/openapi.json', '/api/openapi.json']);
const ERROR_SCHEMA: Record<ApiName, string> = { aideer: 'ExceptionDetail', oneapi: 'ErrorResponse' };

function escapePointer(s: string) {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function readDocument(file: string): OpenApiDocument {
  const doc: unknown = parse(fs.readFileSync(file, 'utf8'));
  if (typeof doc !== 'object' || doc === null || !('paths' in doc) || !('info' in doc))
    throw new Error(`${file}: not an OpenAPI document with paths`);
  // yaml parses to `any`; the document's shape is checked by `redocly lint` in CI and by
  // openapi-backend when the server starts.
  return doc as OpenApiDocument;
}

/** One server-sent event as a reader holds it: `event` defaults to `message`, `data` is parsed JSON. */
export interface StreamEventSeen {
  event: string;
  data?: unknown;
  id?: string;
}

/** Turns an event's raw fields into what its schema describes (data that is not JSON stays text). */
export function streamEventOf(fields: { event?: string; data?: string; id?: string }): StreamEventSeen {
  const seen: StreamEventSeen = { event: fields.event || 'message' };
  if (fields.data !== undefined) {
    try {
      seen.data = JSON.parse(fields.data);
    } catch {
      seen.data = fields.data;
    }
  }
  if (fields.id !== undefined) seen.id = fields.id;
  return seen;
}

export interface CoverageRow {
  api: ApiName;
  operationId: string;
  status: string;
  count: number;
}

export interface ResponseSeen {
  method: string;
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text?: string;
}

export class Contract {
  readonly docs: Record<ApiName, OpenApiDocument>;
  private readonly ops: Op[] = [];
  private readonly ajv = createAjv2020({ allErrors: true });
  readonly exercised = new Map<string, number>();
  /** Server-sent events checked, by operation. */
  readonly eventsChecked = new Map<string, number>();

  constructor() {
    this.docs = {
      aideer: readDocument(SPEC_FILES.aideer),
      oneapi: readDocument(SPEC_FILES.oneapi),
    };
    for (const api of ['aideer', 'oneapi'] as const) {
      const doc = this.docs[api];
      this.ajv.addSchema(doc, api, undefined, false);
      for (const [template, item] of Object.entries(doc.paths)) {
        for (const method of METHODS) {
          const op = item[method];
          if (!op) continue;
          const responses: Op['responses'] = {};
          for (const [status, r] of Object.entries(op.responses ?? {})) {
            const pointer = r.$ref
              ? r.$ref.slice(1)
              : `/paths/${escapePointer(template)}/${method}/responses/${status}`;
            const response = r.$ref ? resolve<ResponseObject>(doc, r.$ref) : r;
            if (!response) throw new Error(`${api}: ${template} ${method} ${status}: $ref ${r.$ref} names nothing`);
            responses[status] = { pointer, response };
          }
          const pattern = template
            .replace(/\/+$/, '')
            .split('/')
            .map((seg) => (/^\{.+\}$/.test(seg) ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
            .join('/');
          this.ops.push({
            api,
            operationId: op.operationId,
            method,
            template,
            operation: op,
            pathParameters: item.parameters ?? [],
            regex: new RegExp(`^${pattern}/*$`),
            params: (template.match(/\{/g) ?? []).length,
            responses,
          });
        }
      }
    }
    // Static paths win over templated ones, as in any router.
    this.ops.sort((a, b) => a.params - b.params);
  }

  /** Every documented operation × status pair. */
  documentedPairs(): { api: ApiName; operationId: string; status: string }[] {
    return this.ops.flatMap((op) =>
      Object.keys(op.responses).map((status) => ({ api: op.api, operationId: op.operationId, status })),
    );
  }

  operations(): (Pick<Op, 'api' | 'operationId' | 'method' | 'template' | 'operation' | 'pathParameters'> & {
    responses: Record<string, ResponseObject>;
  })[] {
    return this.ops.map((op) => ({
      api: op.api,
      operationId: op.operationId,
      method: op.method,
      template: op.template,
      operation: op.operation,
      pathParameters: op.pathParameters,
      responses: Object.fromEntries(Object.entries(op.responses).map(([s, r]) => [s, r.response])),
    }));
  }

  /** Finds the API and operation a request addressed (undefined operation: no such route). */
  locate(method: string, url: string): { api?: ApiName; op?: Op; pathMatched: boolean } {
    // As sent: URL parsing would resolve `.` and `..` segments, which a server sees as they are.
    const pathname = /^[a-z][a-z0-9+.-]*:/i.test(url) ? new URL(url).pathname : url.split(/[?#]/, 1)[0];
    const entry = API_BASES.find(([, base]) => pathname === base || pathname.startsWith(`${base}/`));
    if (!entry || OUTSIDE_CONTRACT.has(pathname)) return { pathMatched: false };
    const [api, base] = entry;
    const rel = pathname.slice(base.length) || '/';
    const candidates = this.ops.filter((op) => op.api === api && op.regex.test(rel));
    return { api, op: candidates.find((op) => op.method === method.toLowerCase()), pathMatched: candidates.length > 0 };
  }

  /** Problems with a response, as sentences; empty when it is on contract. Records coverage. */
  check(seen: ResponseSeen): string[] {
    const { api, op, pathMatched } = this.locate(seen.method, seen.url);
    const contentType = String(seen.headers['content-type'] ?? '')
      .split(';')[0]
      .trim();
    const where = `${seen.method.toUpperCase()} ${seen.url} → ${seen.status}`;
    if (!api) return [];
    if (seen.method.toUpperCase() === 'OPTIONS' && !op)
      return seen.status === 204 ? [] : [`${where}: a CORS preflight must answer 204`];
    if (!op) {
      // Oversized headers are answered before routing, on any path (components/responses/HeadersTooLarge).
      const expected = seen.status === 431 ? 431 : pathMatched ? 405 : 404;
      const problems =
        seen.status === expected ? [] : [`${where}: expected ${expected} for a request matching no operation`];
      return problems.concat(this.validate(api, `/components/schemas/${ERROR_SCHEMA[api]}`, seen.body, where));
    }
    const documented = op.responses[String(seen.status)];
    if (!documented)
      return [
        `${where}: status ${seen.status} is not documented for ${op.operationId} (documented: ${Object.keys(op.responses).join(', ')})`,
      ];
    const key = `${api} ${op.operationId} ${seen.status}`;
    this.exercised.set(key, (this.exercised.get(key) ?? 0) + 1);
    const problems: string[] = [];
    for (const [name, header] of Object.entries(documented.response.headers ?? {})) {
      if (header.required && seen.headers[name.toLowerCase()] === undefined)
        problems.push(`${where}: required header ${name} is missing`);
    }
    const content = documented.response.content;
    if (!content) {
      const emptyObject = typeof seen.body === 'object' && seen.body !== null && Object.keys(seen.body).length === 0;
      const hasBody = (seen.text ?? '') !== '' || (seen.body !== undefined && seen.body !== null && !emptyObject);
      if (hasBody) problems.push(`${where}: the spec documents no body, but one was sent`);
      return problems;
    }
    if (!(contentType in content))
      return [
        ...problems,
        `${where}: content type "${contentType}" is not documented (${Object.keys(content).join(', ')})`,
      ];
    if (contentType === 'application/json') {
      problems.push(...this.validate(api, `${documented.pointer}/content/application~1json/schema`, seen.body, where));
    }
    return problems;
  }

  /**
   * Problems with one event of a documented event stream, as sentences: the event must match the
   * schema its response names in `x-sse-events` (a stream with none fails: nothing could check it).
   */
  checkEvent(seen: { method: string; url: string; status: number }, event: StreamEventSeen): string[] {
    const { api, op } = this.locate(seen.method, seen.url);
    const where = `${seen.method.toUpperCase()} ${seen.url} → ${seen.status}, event ${JSON.stringify(event).slice(0, 300)}`;
    if (!api || !op) return [`${where}: an event stream from no documented operation`];
    const documented = op.responses[String(seen.status)];
    const media: MediaType | undefined = documented?.response.content?.['text/event-stream'];
    if (!documented || !media)
      return [`${where}: ${op.operationId} documents no event stream for status ${seen.status}`];
    const schema = media['x-sse-events'];
    if (!schema) return [`${where}: the stream documents no x-sse-events schema to check its events against`];
    const pointer = schema.$ref
      ? String(schema.$ref).slice(1)
      : `${documented.pointer}/content/text~1event-stream/x-sse-events`;
    const key = `${api} ${op.operationId}`;
    this.eventsChecked.set(key, (this.eventsChecked.get(key) ?? 0) + 1);
    return this.validate(api, pointer, event, where, 'event');
  }

  private validate(api: ApiName, pointer: string, body: unknown, where: string, what = 'body'): string[] {
    const validate = this.ajv.getSchema(`${api}#${pointer}`);
    if (!validate) return [`${where}: no schema at ${pointer}`];
    if (validate(body)) return [];
    return [
      `${where}: ${what} does not match the spec: ${this.ajv.errorsText(validate.errors, { dataVar: what })}; ${what}: ${JSON.stringify(body).slice(0, 500)}`,
    ];
  }

  /** Every documented pair with how many checked responses exercised it. */
  coverage(): CoverageRow[] {
    return this.documentedPairs().map((p) => ({
      ...p,
      count: this.exercised.get(`${p.api} ${p.operationId} ${p.status}`) ?? 0,
    }));
  }
}

/** `exercised/documented` for some coverage rows. */
export function coverageSummary(rows: CoverageRow[]): string {
  return `${rows.filter((r) => r.count > 0).length}/${rows.length}`;
}
