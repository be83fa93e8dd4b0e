// 1. Routing cost per request against the number of operations: openapi-backend's stock
// `OpenAPIRouter.matchOperation` (the baseline) versus our `OperationMatcher` (src/http/router.ts),
// on both real specs and on synthetic specs made larger by copying the templated paths.
import OpenAPIBackendModule, { type Document } from 'openapi-backend';
import { loadSpec } from '../src/spec.ts';
import { OperationMatcher, type RoutedOperation } from '../src/http/router.ts';
import { median, num, printTable, ratio } from './report.ts';

const { OpenAPIBackend } = OpenAPIBackendModule as unknown as { OpenAPIBackend: typeof OpenAPIBackendModule.OpenAPIBackend };

const UUID = '3f2b8c1e-9d4a-4e6b-a1c7-5e0f2d9b8a64';

// Real request paths, relative to each API's mount point (as the bound router sees them), static
// and templated mixed. The method is upper case, as express hands it over.
const AIDEER_REQUESTS: [string, string][] = [
  ['GET', '/users'],
  ['GET', '/users/me'],
  ['GET', '/users/42'],
  ['PUT', '/users/42/password'],
  ['DELETE', `/users/me/likes/chat/${UUID}`],
  ['POST', '/users/me/likes/preset/7'],
  ['GET', `/chats/${UUID}`],
  ['GET', `/tasks/${UUID}/stream`],
  ['GET', '/codes/ABCD1234'],
  ['GET', '/utils/init'],
];
const ONEAPI_REQUESTS: [string, string][] = [
  ['GET', '/phone_verification'],
  ['POST', '/user/login'],
  ['GET', '/user/self'],
  ['GET', '/topics'],
  ['GET', '/topics/7/messages'],
  ['DELETE', '/topics/7'],
  ['PUT', '/subscriptions/3/cancel'],
  ['GET', '/subscriptions/3/articles'],
];

interface Backend {
  router: {
    getOperations(): RoutedOperation[];
    matchOperation(req: { method: string; path: string; headers: object; query: object }, strict: true): RoutedOperation;
  };
}

async function stockBackend(definition: Document): Promise<Backend> {
  const api = new OpenAPIBackend({ definition: structuredClone(definition), apiRoot: '/', quick: true });
  await api.init();
  return api as unknown as Backend;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

type PathItem = Record<string, { operationId?: string } | undefined>;
const opsIn = (item: PathItem) => HTTP_METHODS.filter((m) => item[m]).length;

/**
 * The aideer spec plus copies of its templated paths under renamed first segments
 * (`/users/{user_id}` → `/users_2/{user_id}`), until it has at least `templatedTarget` templated
 * operations. The real request paths still match the original operations.
 */
function synthesise(base: Document, templatedTarget: number): Document {
  const doc = structuredClone(base);
  const paths = (doc.paths ?? {}) as Record<string, PathItem>;
  const templated = Object.entries(paths).filter(([p]) => p.includes('{'));
  let count = templated.reduce((n, [, item]) => n + opsIn(item), 0);
  for (let k = 2; count < templatedTarget; k++) {
    for (const [p, item] of templated) {
      if (count >= templatedTarget) break;
      const copy = structuredClone(item);
      for (const m of HTTP_METHODS) if (copy[m]?.operationId) copy[m].operationId += `_${k}`;
      paths[p.replace(/^\/([^/]+)/, `/$1_${k}`)] = copy;
      count += opsIn(item);
    }
  }
  return doc;
}

type Match = (method: string, path: string) => string;

/**
 * µs per match: the request mix is run in rounds until `sampleMs` has passed, five samples after
 * a warm-up, median taken. Time-boxed rather than a fixed count so the slow case stays bounded.
 */
function timeMatches(match: Match, requests: [string, string][], sampleMs: number): { us: number; n: number } {
  let sink = 0; // keeps the results alive so the calls cannot be optimised away
  const sample = (ms: number) => {
    let n = 0;
    const start = performance.now();
    let elapsed = 0;
    do {
      for (const [method, path] of requests) sink += match(method, path).length;
      n += requests.length;
      elapsed = performance.now() - start;
    } while (elapsed < ms);
    return { us: (elapsed * 1000) / n, n };
  };
  sample(sampleMs); // warm-up
  const samples = Array.from({ length: 5 }, () => sample(sampleMs));
  if (sink === 0) throw new Error('unreachable');
  return { us: median(samples.map((s) => s.us)), n: samples.reduce((t, s) => t + s.n, 0) };
}

export interface RoutingRow {
  spec: string;
  ops: number;
  templated: number;
  stockUs: number;
  memoUs: number;
  oursUs: number;
  n: number;
}

export async function benchRouting(): Promise<RoutingRow[]> {
  const aideer = loadSpec('aideer');
  const cases: { spec: string; doc: Document; requests: [string, string][] }[] = [
    { spec: 'oneapi', doc: loadSpec('oneapi'), requests: ONEAPI_REQUESTS },
    { spec: 'aideer', doc: aideer, requests: AIDEER_REQUESTS },
    { spec: 'aideer + copies', doc: synthesise(aideer, 100), requests: AIDEER_REQUESTS },
    { spec: 'aideer + copies', doc: synthesise(aideer, 200), requests: AIDEER_REQUESTS },
  ];
  const rows: RoutingRow[] = [];
  for (const { spec, doc, requests } of cases) {
    const stock = await stockBackend(doc);
    const operations = stock.router.getOperations();
    const stockMatch: Match = (method, path) => stock.router.matchOperation({ method, path, headers: {}, query: {} }, true).operationId;

    // The stock router with its operation list computed once (what bind.ts also does), to show
    // how much of the cost is the list rebuild and how much the per-request RegExps.
    const memo = await stockBackend(doc);
    const memoOps = memo.router.getOperations();
    memo.router.getOperations = () => memoOps;
    const memoMatch: Match = (method, path) => memo.router.matchOperation({ method, path, headers: {}, query: {} }, true).operationId;

    const matcher = new OperationMatcher(operations);
    const oursMatch: Match = (method, path) => {
      const m = matcher.match(method, path);
      if (m.kind !== 'found') throw new Error(`${method} ${path}: ${m.kind}`);
      return m.operation.operationId;
    };

    // Both routers must agree on every request, or the comparison means nothing.
    for (const [method, path] of requests) {
      const a = stockMatch(method, path);
      const b = oursMatch(method, path);
      if (a !== b) throw new Error(`${spec}: ${method} ${path} routes to ${a} (stock) but ${b} (ours)`);
    }

    const s = timeMatches(stockMatch, requests, 60);
    const m = timeMatches(memoMatch, requests, 40);
    const o = timeMatches(oursMatch, requests, 40);
    rows.push({
      spec,
      ops: operations.length,
      templated: operations.filter((op) => op.path.includes('{')).length,
      stockUs: s.us,
      memoUs: m.us,
      oursUs: o.us,
      n: s.n + m.n + o.n,
    });
  }
  return rows;
}

export function printRouting(rows: RoutingRow[]): void {
  console.log('\n1. Routing: µs per matched request (mixed static/templated paths), baseline = stock openapi-backend matchOperation');
  printTable([
    ['spec', 'ops', 'templated', 'stock µs', 'stock, list memoised µs', 'ours µs', 'stock/ours', 'memoised/ours'],
    ...rows.map((r) => [r.spec, String(r.ops), String(r.templated), num(r.stockUs), num(r.memoUs), num(r.oursUs), ratio(r.stockUs / r.oursUs), ratio(r.memoUs / r.oursUs)]),
  ]);
  // Growth is read on the aideer request mix only (the oneapi row uses other paths).
  const first = rows.find((r) => r.spec === 'aideer')!;
  const last = rows[rows.length - 1];
  console.log(
    `  aideer mix, from ${first.ops} to ${last.ops} operations: stock ×${(last.stockUs / first.stockUs).toFixed(1)}, ` +
      `memoised ×${(last.memoUs / first.memoUs).toFixed(1)}, ours ×${(last.oursUs / first.oursUs).toFixed(1)}. ` +
      `(Ours also extracts path parameters; the stock matcher does not.)`,
  );
}
