// The one place that reaches into openapi-backend's internals. openapi-backend (pinned to exactly
// 5.21.2 in package.json) routes, parses and validates each request itself, with lodash, and parses
// it three times (routing, security, validation). Under load that cost 4.6% of all CPU on
// `GET /api/user/self` (openapi-backend and lodash in the CPU profile of 2026-12-01, with its
// validateRequest 3% more), for work that depends only on the operation. So routing is ours
// (router.ts, matched once per request), the parse is done once, validators are compiled at
// start-up, and validateRequest's per-operation lookups are made once. Security handlers,
// validation and the handler call stay openapi-backend's.
//
// test/openapi-backend-adapter.test.ts fails when an upgrade changes any method replaced or
// relied on here: re-read those against this file before taking a new version.
import type { ErrorObject } from 'ajv';
import type { OpenAPIBackend } from 'openapi-backend';
import { requestCompiler } from './ajv.ts';
import type { MatchResult, OperationMatcher, RoutedOperation } from './router.ts';

export interface SpecOperation extends RoutedOperation {
  parameters?: { in: string; name: string; schema?: { type?: unknown }; content?: Record<string, unknown> }[];
  requestBody?: { content?: Record<string, unknown> };
}

/**
 * The methods of openapi-backend's classes that this module replaces on an instance, or calls:
 * the adapter test hashes their source.
 */
export const RELIED_ON = {
  OpenAPIBackend: ['init', 'handleRequest'],
  OpenAPIRouter: ['getOperations', 'getOperation', 'matchOperation', 'parseRequest', 'parseRequestQuery'],
  OpenAPIValidator: [
    'preCompileRequestValidators',
    'getAjv',
    'getRequestValidatorsForOperation',
    'validateRequest',
    'buildRequestValidatorsForOperation',
  ],
} as const;

/**
 * Replaces routing, request parsing and validator compilation of an initialised OpenAPIBackend:
 * `operations` are its operations, routed by `matcher`; `matched` holds each request's match, set
 * by the binding before it calls handleRequest.
 */
export function adaptOpenApiBackend(
  api: OpenAPIBackend,
  operations: SpecOperation[],
  matcher: OperationMatcher<SpecOperation>,
  matched: WeakMap<object, MatchResult<SpecOperation>>,
): void {
  const byId = new Map(operations.map((op) => [op.operationId, op]));
  const queryNames = new Map(
    operations.map((op) => [
      op.operationId,
      new Set((op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)),
    ]),
  );
  // Patched on purpose: openapi-backend's types describe the public signatures, not the internals
  // and looser requests used here (see OabRouter, OabValidator); the adapter test pins them.
  const router = api.router as OabRouter;
  const validator = api.validator as OabValidator;
  router.getOperations = () => operations;
  router.getOperation = (id: string) => byId.get(id);
  router.matchOperation = (req: { method: string; path: string }) => {
    const m = matched.get(req) ?? matcher.match(req.method, req.path);
    if (m.kind === 'found') return m.operation;
    throw new Error(
      m.kind === 'notFound'
        ? '404-notFound: no route matches request'
        : '405-methodNotAllowed: this method is not registered for the route',
    );
  };
  // openapi-backend parses each request three times (routing, security, validation): once here.
  // Headers are passed as they are: no operation declares a header parameter the validator could
  // coerce in place, except those listed, which get a copy.
  const headerParams = new Set(
    operations.filter((op) => (op.parameters ?? []).some((p) => p.in === 'header')).map((op) => op.operationId),
  );
  const parsed = new WeakMap<object, ParsedRequest>();
  router.parseRequest = (req, operation) => {
    const m = matched.get(req);
    const known = parsed.get(req);
    if (known) return known;
    const found = m?.kind === 'found' ? m.operation : operation;
    const query: Record<string, unknown> = {};
    if (found) {
      // Unknown query parameters are ignored, as the original services did.
      const names = queryNames.get(found.operationId);
      if (names) for (const k in req.query) if (names.has(k)) query[k] = req.query[k];
    } else Object.assign(query, req.query);
    const params = req.params ?? (m?.kind === 'found' ? { ...m.params } : {});
    const headers = found && headerParams.has(found.operationId) ? { ...req.headers } : req.headers;
    const result = {
      method: req.method.toLowerCase(),
      path: req.path,
      query,
      headers,
      body: req.body,
      params,
      cookies: {},
      requestBody: req.body,
    };
    if (m) parsed.set(req, result);
    return result;
  };
  // Request validators are compiled now, once, not on first use; and with our shared Ajv directly
  // (openapi-backend would build a throwaway draft-07 instance per schema before customizeAjv),
  // each distinct schema once (requestCompiler).
  validator.getAjv = (_ctx, opts = {}) => requestCompiler(opts);
  validator.preCompileRequestValidators();
  patchValidateRequest(validator, router, operations);
}

interface ParsedRequest {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  headers: Record<string, unknown>;
  cookies: Record<string, unknown>;
  requestBody: unknown;
}
type ValidateFn = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
interface OabRouter {
  getOperations(): SpecOperation[];
  getOperation(id: string): SpecOperation | undefined;
  matchOperation(req: { method: string; path: string }): SpecOperation;
  parseRequest(req: OabRequest, op?: SpecOperation): ParsedRequest;
  parseRequestQuery(req: unknown): Record<string, unknown>;
}
interface OabRequest {
  method: string;
  path: string;
  query?: Record<string, unknown>;
  headers: Record<string, unknown>;
  body?: unknown;
  params?: Record<string, unknown>;
}
interface OabValidator {
  coerceTypes: boolean;
  preCompileRequestValidators(): void;
  getAjv(ctx: unknown, opts?: { coerceTypes?: boolean }): unknown;
  getRequestValidatorsForOperation(operationId: string): ValidateFn[] | null;
  validateRequest(req: OabRequest, operation?: unknown): unknown;
}

/**
 * openapi-backend's validateRequest, step for step, with what depends only on the operation (its
 * array-typed and JSON-content query parameters, its body media types) looked up once here
 * rather than with lodash on every request. It runs the same compiled validators on the same
 * parameter object, with the same coercion and result; only the operations this router serves
 * reach it (handleRequest passes the matched operation).
 */
function patchValidateRequest(validator: OabValidator, router: OabRouter, operations: SpecOperation[]): void {
  type Param = NonNullable<SpecOperation['parameters']>[number];
  const facts = new Map<unknown, { op: SpecOperation; arrayQuery: Set<string>; jsonQuery: Param[]; onlyJson: boolean }>(
    operations.map((op) => {
      const params = op.parameters ?? [];
      // lodash's _.find(parameters, { name, in: 'query' }): the first such parameter counts.
      const firstQuery = new Map<string, Param>();
      for (const p of params) if (p.in === 'query' && !firstQuery.has(p.name)) firstQuery.set(p.name, p);
      const arrayQuery = new Set([...firstQuery].filter(([, p]) => p.schema?.type === 'array').map(([name]) => name));
      const jsonQuery = params.filter((p) => !('$ref' in p) && p.in === 'query' && p.content?.['application/json']);
      const formats = Object.keys(op.requestBody?.content ?? {});
      const onlyJson = formats.length === 1 && formats[0] === 'application/json';
      return [op, { op, arrayQuery, jsonQuery, onlyJson }] as const;
    }),
  );
  const original = validator.validateRequest.bind(validator);
  validator.validateRequest = (req, operation) => {
    const fact = facts.get(operation);
    if (!fact) return original(req, operation);
    const request = req;
    const result: { valid: boolean; coerced: Record<string, unknown>; errors: ErrorObject[] | null } = {
      valid: true,
      coerced: { ...req },
      errors: [],
    };
    const errors: ErrorObject[] = [];
    const validators = validator.getRequestValidatorsForOperation(fact.op.operationId) ?? [];
    const { params, query, headers, cookies, requestBody } = router.parseRequest(req, fact.op);
    if (query && fact.arrayQuery.size) {
      for (const name in query)
        if (typeof query[name] === 'string' && fact.arrayQuery.has(name)) query[name] = [query[name]];
    }
    const parameters: Record<string, unknown> = {};
    if (params != null) parameters.path = params;
    if (query != null) parameters.query = query;
    if (headers != null) parameters.header = headers;
    if (cookies != null) parameters.cookie = cookies;
    // openapi-backend tries any body that is not an object; from express's parsers that is a string.
    if (typeof request.body === 'string' && fact.onlyJson) {
      try {
        JSON.parse(request.body);
      } catch (err) {
        if (err instanceof Error) {
          const message = err.message;
          errors.push({ keyword: 'parse', instancePath: '', schemaPath: '#/requestBody', params: [], message });
        }
      }
    }
    if (fact.jsonQuery.length) {
      const rawQuery = router.parseRequestQuery(req);
      for (const param of fact.jsonQuery) {
        const rawValue = rawQuery[param.name];
        if (typeof rawValue !== 'string') continue;
        try {
          JSON.parse(rawValue);
        } catch (err) {
          if (err instanceof Error) {
            const instancePath = `/query/${param.name}`;
            const schemaPath = `#/parameters/${param.name}`;
            errors.push({ keyword: 'parse', instancePath, schemaPath, params: [], message: err.message });
          }
        }
      }
    }
    const rawContentType = headers['content-type'];
    const contentType = String((Array.isArray(rawContentType) ? rawContentType[0] : rawContentType) || '')
      .split(';')[0]
      .trim()
      .toLowerCase();
    if (typeof requestBody === 'object' || contentType === 'application/json') parameters.requestBody = requestBody;
    for (const validate of validators) {
      validate(parameters);
      if (validate.errors) errors.push(...validate.errors);
      else if (validator.coerceTypes) {
        result.coerced.query = parameters.query;
        result.coerced.params = parameters.path;
      }
    }
    if (errors.length === 0) result.errors = null;
    else {
      result.errors = errors;
      result.valid = false;
    }
    return result;
  };
}
