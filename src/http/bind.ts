// Binds one OpenAPI document to its handlers by operationId and serves it as an express router.
// openapi-backend does security and request validation (Ajv 2020, compiled once); routing is ours
// (see router.ts), and what we replace inside openapi-backend is in openapiBackend.ts.
import { isUtf8 } from 'node:buffer';
import express, { type Request, type Response, type NextFunction, type Router } from 'express';
import multer from 'multer';
import type { ErrorObject } from 'ajv';
import * as openapiBackend from 'openapi-backend';
import type { Context, Document, Operation } from 'openapi-backend';
import { LOWERCASE_KEYWORD, requestAjv } from './ajv.ts';
import { adaptOpenApiBackend, type SpecOperation } from './openapiBackend.ts';
import { OperationMatcher, type MatchResult } from './router.ts';
import type { Handler, RawResult, SseBody } from './types.ts';
import type { Logger } from '../logger.ts';

// CommonJS package: its named export arrives directly or under `default`, depending on the loader.
const OpenAPIBackend = openapiBackend.OpenAPIBackend ?? openapiBackend.default.OpenAPIBackend;

/** Thrown by a security handler to refuse a request with the API's own status and message. */
export class AuthFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export interface ApiErrors {
  validation(errors: ErrorObject[]): RawResult;
  unauthorized(failure: AuthFailure | undefined): RawResult;
  notFound(): RawResult;
  methodNotAllowed(allowed: string[]): RawResult;
  /** A body that could not be parsed at all: `json` (JSON syntax) or `form` (urlencoded/multipart). */
  malformedBody(kind: 'json' | 'form', message: string): RawResult;
  payloadTooLarge(): RawResult;
  internal(): RawResult;
}

export interface ApiBinding<Auth> {
  name: string;
  document: Document;
  // Each handler is typed against its operation where the map is declared; here they are opaque.
  handlers: Record<string, Handler<never, Auth>>;
  /** Per security scheme of the spec; gets the request, the operation, and the scopes it requires. */
  securityHandlers: Record<
    string,
    (req: Request, operation: { operationId: string; scopes: string[] }) => Promise<unknown>
  >;
  /** Turns the security handlers' results into what handlers receive as `auth`. */
  authFrom(security: Record<string, unknown>): Auth;
  errors: ApiErrors;
  logger: Logger;
  /** Body size limit for JSON and form bodies. */
  bodyLimit?: string;
  /** Size limit of one uploaded file in a multipart body (413 beyond). */
  fileLimitBytes?: number;
}

export class BindingError extends Error {}

/** Refuses to start when an operation has no handler or a handler names no operation. */
export function checkBinding(name: string, operationIds: Iterable<string>, handlers: Record<string, unknown>): void {
  const ids = new Set(operationIds);
  const missing = [...ids].filter((id) => !(id in handlers));
  const unknown = Object.keys(handlers).filter((id) => !ids.has(id));
  const problems: string[] = [];
  if (missing.length) problems.push(`operations without a handler: ${missing.join(', ')}`);
  if (unknown.length) problems.push(`handlers naming no operation: ${unknown.join(', ')}`);
  if (problems.length) throw new BindingError(`${name}: ${problems.join('; ')}`);
}

export async function bindApi<Auth>(binding: ApiBinding<Auth>): Promise<Router> {
  const { document, handlers, errors } = binding;

  const api = new OpenAPIBackend({
    definition: prepareForValidation(structuredClone(document)),
    apiRoot: '/',
    quick: true, // no 3.0 meta-schema check (the 3.1 document is validated by redocly and the tests) and no eager response validators
    validate: true,
    coerceTypes: true,
    customizeAjv: (_ajv, opts) => requestAjv(opts),
  });
  await api.init();

  // Routing, computed once.
  const all = api.router.getOperations();
  const operations = all.filter(isSpecOperation);
  if (operations.length !== all.length) {
    throw new BindingError(`${binding.name}: an operation has no operationId or an unresolved $ref`);
  }
  if (operations.length === 0) throw new BindingError(`${binding.name}: the document has no operations`);
  checkBinding(
    binding.name,
    operations.map((op) => op.operationId),
    handlers,
  );
  const bodyTypes = new Map(operations.map((op) => [op.operationId, Object.keys(op.requestBody?.content ?? {})]));
  const matcher = new OperationMatcher(operations);
  const matched = new WeakMap<object, MatchResult<SpecOperation>>();
  adaptOpenApiBackend(api, operations, matcher, matched);

  api.register({
    validationFail: (c: Context) => errors.validation(c.validation.errors ?? []),
    unauthorizedHandler: (c: Context) => {
      const results: unknown[] = Object.values(c.security ?? {});
      for (const r of results) {
        // What openapi-backend keeps for a security handler that threw: `{ error }`.
        const err = typeof r === 'object' && r !== null && 'error' in r ? r.error : undefined;
        if (err instanceof AuthFailure) return errors.unauthorized(err);
        // A fault (e.g. the database is down), not a refusal.
        if (err) throw err instanceof Error ? err : new Error('security handler failed', { cause: err });
      }
      return errors.unauthorized(undefined);
    },
    notFound: () => errors.notFound(),
    methodNotAllowed: () => errors.methodNotAllowed([]),
  });
  for (const [name, fn] of Object.entries(binding.securityHandlers)) {
    api.registerSecurityHandler(name, (c: Context, req: Request) => {
      const requirement = (c.operation.security ?? []).find((r) => name in r);
      // Every operation has an operationId: bindApi checked them all at start-up.
      return fn(req, { operationId: c.operation.operationId ?? '', scopes: requirement?.[name] ?? [] });
    });
  }
  for (const [operationId, handler] of Object.entries(handlers)) {
    // The parsed parameters and body as unknown: openapi-backend types them any by default.
    api.register(operationId, (c: Context<unknown, unknown, unknown>, req: Request, closed: ClosedSignal) =>
      handler({
        params: c.request.params,
        query: c.request.query,
        body: c.request.requestBody,
        auth: binding.authFrom(c.security ?? {}),
        req,
        get signal() {
          return closed.signal;
        },
        // Each handler's input type is its own operation's, which no single type here can name;
        // openapi-backend has validated the input against that operation of the same document.
      } as never),
    );
  }

  const r = express.Router();
  r.use(
    bodyParser(binding.bodyLimit ?? '1mb', binding.fileLimitBytes ?? 1024 * 1024, (req) => {
      const m = matcher.match(req.method, req.path);
      return m.kind === 'found' ? (bodyTypes.get(m.operation.operationId) ?? NO_BODY_TYPES) : NO_BODY_TYPES;
    }),
  );
  r.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      const m = matcher.match(req.method, req.path);
      if (m.kind === 'notFound') return send(res, errors.notFound());
      if (m.kind === 'methodNotAllowed') return send(res, errors.methodNotAllowed(m.allowed));
      res.locals.operationId = m.operation.operationId;
      // A body in a media type the operation does not take is no body at all (then 'missing').
      const types = bodyTypes.get(m.operation.operationId) ?? NO_BODY_TYPES;
      const body: unknown = types.length && !req.is(types) ? undefined : req.body;
      const query: Record<string, unknown> = req.query;
      // Postgres text cannot hold U+0000, and nothing below may recurse without a bound.
      const unfit = unfitRequestData({ requestBody: body, query, path: m.params });
      if (unfit) return send(res, errors.validation([unfit]));
      const request = { method: req.method, path: req.path, query, headers: req.headers, body };
      matched.set(request, m);
      const closed = new ClosedSignal(res);
      // openapi-backend's Request type is narrower than express's query and headers, which our
      // parseRequest (openapiBackend.ts) takes as they are; handleRequest returns any: what our
      // handlers and error callbacks returned.
      const result = (await api.handleRequest(request as never, req, closed)) as RawResult & { sse?: SseBody };
      await sendResult(res, result, closed);
    } catch (err) {
      next(err);
    }
  });
  // Body-parser failures and faults, in the API's own error shape.
  r.use((err: Error & { type?: string; status?: number }, req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.too.large' || err.type === 'parameters.too.many')
      return send(res, errors.payloadTooLarge());
    if (err instanceof multer.MulterError) {
      return send(
        res,
        err.code === 'LIMIT_FILE_SIZE' || err.code === 'LIMIT_FIELD_VALUE'
          ? errors.payloadTooLarge()
          : errors.malformedBody('form', err.message),
      );
    }
    // Every other body-parser refusal (syntax, charset, not UTF-8, aborted...) is the client's.
    if (typeof err.type === 'string' && (err.status ?? 500) < 500)
      return send(res, errors.malformedBody(req.is('json') ? 'json' : 'form', err.message));
    (req.log ?? binding.logger).error({ err }, 'request failed');
    if (res.headersSent) return res.end();
    return send(res, errors.internal());
  });
  return r;
}

/**
 * Parses a body only in a media type its operation takes: any other body is left unread, so it
 * can neither fail nor reach a handler (the operation then sees no body).
 */
function bodyParser(
  limit: string,
  fileLimitBytes: number,
  mediaTypes: (req: Request) => string[],
): express.RequestHandler {
  const json = express.json({ limit, type: () => true, verify: utf8Only('json') });
  const form = express.urlencoded({ limit, extended: false, type: () => true, verify: utf8Only('form') });
  const multipart = multipartBody(fileLimitBytes);
  return (req, res, next) => {
    if (!req.headers['content-type']) return next();
    const types = mediaTypes(req);
    const type = types.length ? req.is(types) : false;
    if (!type) return next();
    if (type === 'application/x-www-form-urlencoded') return form(req, res, next);
    if (type === 'multipart/form-data') return multipart(req, res, next);
    if (req.is(['json', '+json'])) return json(req, res, next);
    next();
  };
}

/** Refuses a body whose bytes are not UTF-8 (a form's percent-escapes included), before parsing. */
function utf8Only(kind: 'json' | 'form') {
  return (_req: unknown, _res: unknown, buf: Buffer, encoding: string) => {
    // A form in ISO-8859-1 is one byte per character: every byte is text.
    if (kind === 'form' && encoding !== 'utf-8') return;
    let ok = encoding === 'utf-8' && isUtf8(buf);
    if (ok && kind === 'form' && buf.includes(0x25)) {
      try {
        decodeURIComponent(buf.toString('latin1'));
      } catch {
        ok = false;
      }
    }
    if (!ok)
      throw Object.assign(new Error(`the ${kind === 'json' ? 'JSON' : 'form'} body is not UTF-8 text`), {
        status: 400,
        type: 'entity.not.utf8',
      });
  };
}

/**
 * Multipart bodies (uploads): files are kept in memory and exposed as `req.files`; the body that
 * is validated holds the text fields, and each file field as its file name (the spec types files
 * as binary strings).
 */
function multipartBody(fileLimitBytes: number): express.RequestHandler {
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: fileLimitBytes, files: 4, fields: 32, fieldSize: 64 * 1024 },
  }).any();
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) return next();
    upload(req, res, (err?: unknown) => {
      if (err) {
        if (!(err instanceof multer.MulterError) && (typeof err === 'object' || typeof err === 'function')) {
          Object.assign(err, { type: 'multipart.malformed', status: 400 });
        }
        return next(err);
      }
      const fields: unknown = req.body;
      const body: Record<string, unknown> = typeof fields === 'object' && fields !== null ? { ...fields } : {};
      // multer's any() leaves an array of files (the field-keyed object is for fields()).
      if (Array.isArray(req.files)) for (const file of req.files) body[file.fieldname] = file.originalname || 'upload';
      req.body = body;
      next();
    });
  };
}

/**
 * Readies a document for request validation, in place:
 * - a schema `$ref` with sibling keywords (`default`, `description`...) becomes `allOf: [$ref]`
 *   beside them, since dereferencing would drop the siblings, and with them the defaults the
 *   validator fills in;
 * - every uuid schema is marked to reach handlers lower-cased.
 */
function prepareForValidation(document: Document): Document {
  const visit = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(visit);
    if (!isRecord(value)) return value;
    const obj = value;
    for (const [k, v] of Object.entries(obj)) obj[k] = visit(v);
    if (
      typeof obj.$ref === 'string' &&
      obj.$ref.startsWith('#/components/schemas/') &&
      Object.keys(obj).some((k) => k !== '$ref')
    ) {
      const { $ref, ...siblings } = obj;
      return { allOf: [{ $ref }], ...siblings };
    }
    if (obj.format === 'uuid') obj[LOWERCASE_KEYWORD] = true;
    return obj;
  };
  // The root is changed in place (only a `$ref` object is replaced, and a document is none).
  visit(document);
  return document;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * openapi-backend types an operation's parameters and body as possibly `$ref`s, and its id as
 * optional; after init every `$ref` is resolved, so what remains to check is the id.
 */
function isSpecOperation(op: Operation): op is Operation & SpecOperation {
  return (
    typeof op.operationId === 'string' &&
    (op.parameters ?? []).every((p) => !('$ref' in p)) &&
    !(op.requestBody && '$ref' in op.requestBody)
  );
}

/** The media types of an operation without a request body. */
const NO_BODY_TYPES: string[] = [];

/** How deep request data may nest (SECURITY.md): far past any body the specs describe; the validator recurses. */
export const MAX_REQUEST_DEPTH = 32;

/**
 * The first string holding a NUL character, or the first value nested past MAX_REQUEST_DEPTH, as a
 * validation error at its place. Iterative: the data may be nested arbitrarily deep.
 */
function unfitRequestData(root: Record<string, unknown>): ErrorObject | undefined {
  // Depth counts from inside the body, query or path object.
  const pending: [value: unknown, path: string, depth: number][] = [[root, '', -1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, path, depth] = next;
    if (typeof value === 'string') {
      if (value.includes('\u0000'))
        return {
          keyword: 'nul',
          instancePath: path,
          schemaPath: '#',
          params: {},
          message: 'must not contain NUL characters',
          data: value,
        };
    } else if (value && typeof value === 'object') {
      if (depth >= MAX_REQUEST_DEPTH) {
        return {
          keyword: 'maxDepth',
          instancePath: path,
          schemaPath: '#',
          params: { limit: MAX_REQUEST_DEPTH },
          message: `must not be nested more than ${MAX_REQUEST_DEPTH} levels deep`,
          data: null,
        };
      }
      const entries: [string, unknown][] = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, v] = entries[i];
        if (typeof v === 'string' || (v && typeof v === 'object'))
          pending.push([v, `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, depth + 1]);
      }
    }
  }
  return undefined;
}

/** Aborts when the response closes; the AbortController is made only for a handler that asks. */
class ClosedSignal {
  private controller?: AbortController;
  constructor(private readonly res: Response) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      if (this.res.closed) controller.abort();
      else this.res.once('close', () => controller.abort());
    }
    return this.controller.signal;
  }
}

async function sendResult(res: Response, result: RawResult & { sse?: SseBody }, closed: ClosedSignal): Promise<void> {
  const sse = result.sse;
  if (sse) {
    const signal = closed.signal;
    res.status(result.status);
    for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
    await sse.run(res, signal);
    if (!res.writableEnded) res.end();
    return;
  }
  send(res, result);
}

function send(res: Response, result: RawResult): void {
  if (result.headers) for (const k in result.headers) res.setHeader(k, result.headers[k]);
  res.status(result.status);
  if (result.body === undefined) res.end();
  else writeJson(res, result.body);
}

/**
 * What express's `res.json` writes (our app sets no JSON replacer, spaces or escaping), without
 * its content-type parsing, charset rewriting and header getters per call. Whenever express would
 * do more than that (a HEAD, a status without a body, a type or transfer encoding set earlier),
 * express itself writes the answer. No answer of the APIs carries an ETag (app.ts turns them off)
 * or a Last-Modified, so express never answers a conditional request 304 either.
 */
function writeJson(res: Response, body: unknown): void {
  const req = res.req;
  const status = res.statusCode;
  const text = JSON.stringify(body);
  if (
    text === undefined ||
    req.method === 'HEAD' ||
    status === 204 ||
    status === 205 ||
    status === 304 ||
    res.hasHeader('content-type') ||
    res.hasHeader('transfer-encoding')
  ) {
    res.json(body);
    return;
  }
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(text)));
  res.end(text, 'utf8');
}
