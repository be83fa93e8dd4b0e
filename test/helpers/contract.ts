// The contract check every test response goes through, written apart from the server's own
// routing and validation: it reads the two YAML documents and answers whether a response is one
// the spec describes (documented status, matching content type, body valid against the schema,
// required headers present). It also records which operation × status pairs were exercised.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { createAjv2020 } from '../../src/http/ajv.ts';
import { ROOT, SPEC_FILES, type ApiName } from '../../src/spec.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Op {
  api: ApiName;
  operationId: string;
  method: string;
  template: string;
  regex: RegExp;
  params: number;
  responses: Record<string, { pointer: string; response: Json }>;
}

const API_BASES: [ApiName, string][] = [
  ['aideer', '/api/v1'],
  ['oneapi', '/api'],
];
// Served beside the APIs but not operations of either contract (src/docs.ts); /docs and /redoc
// lie outside both API bases anyway.
const OUTSIDE_CONTRACT = new Set(['/api/v1/openapi.json', '/api/openapi.json']);
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const ERROR_SCHEMA: Record<ApiName, string> = { aideer: 'ExceptionDetail', oneapi: 'ErrorResponse' };

function escapePointer(s: string) {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function resolve(doc: Json, ref: string): Json {
  return ref
    .replace(/^#\//, '')
    .split('/')
    .reduce((node: Json, key) => node[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
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
  readonly docs: Record<ApiName, Json>;
  private readonly ops: Op[] = [];
  private readonly ajv = createAjv2020({ allErrors: true });
  readonly exercised = new Map<string, number>();

  constructor() {
    this.docs = {
      aideer: parse(fs.readFileSync(SPEC_FILES.aideer, 'utf8')),
      oneapi: parse(fs.readFileSync(SPEC_FILES.oneapi, 'utf8')),
    };
    for (const [api, doc] of Object.entries(this.docs) as [ApiName, Json][]) {
      this.ajv.addSchema(doc, api, undefined, false);
      for (const [template, item] of Object.entries<Json>(doc.paths ?? {})) {
        for (const method of METHODS) {
          const op = item[method];
          if (!op) continue;
          const responses: Op['responses'] = {};
          for (const [status, r] of Object.entries<Json>(op.responses ?? {})) {
            const pointer = r.$ref ? r.$ref.slice(1) : `/paths/${escapePointer(template)}/${method}/responses/${status}`;
            responses[status] = { pointer, response: r.$ref ? resolve(doc, r.$ref) : r };
          }
          const pattern = template
            .replace(/\/+$/, '')
            .split('/')
            .map((seg) => (/^\{.+\}$/.test(seg) ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
            .join('/');
          this.ops.push({ api, operationId: op.operationId, method, template, regex: new RegExp(`^${pattern}/*$`), params: (template.match(/\{/g) ?? []).length, responses });
        }
      }
    }
    // Static paths win over templated ones, as in any router.
    this.ops.sort((a, b) => a.params - b.params);
  }

  /** Every documented operation × status pair. */
  documentedPairs(): { api: ApiName; operationId: string; status: string }[] {
    return this.ops.flatMap((op) => Object.keys(op.responses).map((status) => ({ api: op.api, operationId: op.operationId, status })));
  }

  operations(): { api: ApiName; operationId: string; method: string; template: string; responses: Record<string, Json> }[] {
    return this.ops.map((op) => ({ api: op.api, operationId: op.operationId, method: op.method, template: op.template, responses: Object.fromEntries(Object.entries(op.responses).map(([s, r]) => [s, r.response])) }));
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
    const contentType = String(seen.headers['content-type'] ?? '').split(';')[0].trim();
    const where = `${seen.method.toUpperCase()} ${seen.url} → ${seen.status}`;
    if (!api) return [];
    if (seen.method.toUpperCase() === 'OPTIONS' && !op) return seen.status === 204 ? [] : [`${where}: a CORS preflight must answer 204`];
    if (!op) {
      // Oversized headers are answered before routing, on any path (components/responses/HeadersTooLarge).
      const expected = seen.status === 431 ? 431 : pathMatched ? 405 : 404;
      const problems = seen.status === expected ? [] : [`${where}: expected ${expected} for a request matching no operation`];
      return problems.concat(this.validate(api, `/components/schemas/${ERROR_SCHEMA[api]}`, seen.body, where));
    }
    const documented = op.responses[String(seen.status)];
    if (!documented) return [`${where}: status ${seen.status} is not documented for ${op.operationId} (documented: ${Object.keys(op.responses).join(', ')})`];
    const key = `${api} ${op.operationId} ${seen.status}`;
    this.exercised.set(key, (this.exercised.get(key) ?? 0) + 1);
    const problems: string[] = [];
    for (const [name, header] of Object.entries<Json>(documented.response.headers ?? {})) {
      if (header.required && seen.headers[name.toLowerCase()] === undefined) problems.push(`${where}: required header ${name} is missing`);
    }
    const content: Json | undefined = documented.response.content;
    if (!content) {
      const hasBody = (seen.text ?? '') !== '' || (seen.body !== undefined && seen.body !== null && !(typeof seen.body === 'object' && Object.keys(seen.body as object).length === 0));
      if (hasBody) problems.push(`${where}: the spec documents no body, but one was sent`);
      return problems;
    }
    if (!(contentType in content)) return [...problems, `${where}: content type "${contentType}" is not documented (${Object.keys(content).join(', ')})`];
    if (contentType === 'application/json') {
      problems.push(...this.validate(api, `${documented.pointer}/content/application~1json/schema`, seen.body, where));
    }
    return problems;
  }

  private validate(api: ApiName, pointer: string, body: unknown, where: string): string[] {
    const validate = this.ajv.getSchema(`${api}#${pointer}`);
    if (!validate) return [`${where}: no schema at ${pointer}`];
    if (validate(body)) return [];
    return [`${where}: body does not match the spec: ${this.ajv.errorsText(validate.errors, { dataVar: 'body' })}; body: ${JSON.stringify(body).slice(0, 500)}`];
  }

  /** Writes the coverage report and returns its one-line summary. */
  writeReport(label: string): string {
    const pairs = this.documentedPairs();
    const rows = pairs.map((p) => ({ ...p, count: this.exercised.get(`${p.api} ${p.operationId} ${p.status}`) ?? 0 }));
    const dir = path.join(ROOT, 'coverage');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `contract-coverage-${label}.md`);
    const byApi = (api: ApiName) => rows.filter((r) => r.api === api);
    const summaryOf = (rs: typeof rows) => `${rs.filter((r) => r.count > 0).length}/${rs.length}`;
    const lines = [
      `# Contract coverage (${label})`,
      '',
      'Every documented operation × status pair, and how many test responses exercised it.',
      '',
      '| api | operation | status | responses seen |',
      '| --- | --- | --- | --- |',
      ...rows.map((r) => `| ${r.api} | ${r.operationId} | ${r.status} | ${r.count || '**never**'} |`),
      '',
    ];
    fs.writeFileSync(file, lines.join('\n'));
    fs.writeFileSync(path.join(dir, `contract-coverage-${label}.json`), JSON.stringify(rows, null, 2));
    return `contract coverage (${label}): ${summaryOf(rows)} operation×status pairs exercised (aideer ${summaryOf(byApi('aideer'))}, oneapi ${summaryOf(byApi('oneapi'))}); report: ${path.relative(ROOT, file)}`;
  }
}

export const contract = new Contract();

/** Fails the test when a response is off contract (and records its coverage, as check does). */
export function assertOnContract(seen: ResponseSeen): void {
  const problems = contract.check(seen);
  if (problems.length) throw new Error(`Off-contract response:\n  ${problems.join('\n  ')}`);
}
