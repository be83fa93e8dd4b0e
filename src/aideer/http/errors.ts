// AIDeer answers like the original FastAPI service (decision A1): {"detail": "..."} for errors and
// FastAPI's list shape for validation failures, with pydantic v2's error types and messages.
import type { ErrorObject } from 'ajv';
import type { ApiErrors } from '../../http/bind.ts';
import type { RawResult } from '../../http/types.ts';

export function detail<S extends number>(status: S, message: string, headers?: Record<string, string>) {
  return { status, body: { detail: message }, ...(headers ? { headers } : {}) };
}

export interface FastApiValidationItem {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
}

const LOCATION: Record<string, string> = {
  requestBody: 'body',
  query: 'query',
  path: 'path',
  header: 'header',
  cookie: 'cookie',
};

function locOf(e: ErrorObject): (string | number)[] {
  const p: Record<string, unknown> = e.params;
  const [where, ...rest] = e.instancePath
    .split('/')
    .filter(Boolean)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const loc: (string | number)[] = [
    LOCATION[where] ?? where ?? 'body',
    ...rest.map((s) => (/^\d+$/.test(s) ? Number(s) : s)),
  ];
  if (e.keyword === 'required') {
    const missing = String(p.missingProperty);
    if (where === undefined) return [LOCATION[missing] ?? missing];
    loc.push(where === 'header' ? missing.toLowerCase() : missing);
  }
  if (e.keyword === 'additionalProperties') loc.push(String(p.additionalProperty));
  return loc;
}

function quoteList(values: unknown[]): string {
  const q = values.map((v) => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v)));
  return q.length > 1 ? `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}` : (q[0] ?? '');
}

const TYPE_ERRORS: Record<string, [string, string]> = {
  string: ['string_type', 'Input should be a valid string'],
  integer: ['int_type', 'Input should be a valid integer'],
  number: ['float_type', 'Input should be a valid number'],
  boolean: ['bool_type', 'Input should be a valid boolean'],
  object: ['model_attributes_type', 'Input should be a valid dictionary or object to extract fields from'],
  array: ['list_type', 'Input should be a valid list'],
  null: ['none_required', 'Input should be None'],
};

export function toFastApiItem(e: ErrorObject): FastApiValidationItem {
  const p: Record<string, unknown> = e.params;
  // A missing body field shows the body sent (as FastAPI); a missing body or parameter shows null,
  // never the request object around it, whose headers hold the caller's token and cookies.
  const input =
    e.keyword === 'required' ? (e.instancePath.startsWith('/requestBody') ? (e.data ?? null) : null) : e.data;
  const item = (type: string, msg: string, ctx?: Record<string, unknown>): FastApiValidationItem => ({
    type,
    loc: locOf(e),
    msg,
    input: input === undefined ? null : input,
    ...(ctx ? { ctx } : {}),
  });
  switch (e.keyword) {
    case 'required':
      return item('missing', 'Field required');
    case 'type': {
      const expected =
        String(p.type)
          .split(',')
          .find((t) => t !== 'null') ?? 'null';
      if (expected === 'integer' && typeof e.data === 'string')
        return item('int_parsing', 'Input should be a valid integer, unable to parse string as an integer');
      if (expected === 'integer' && typeof e.data === 'number')
        return item('int_from_float', 'Input should be a valid integer, got a number with a fractional part');
      if (expected === 'number' && typeof e.data === 'string')
        return item('float_parsing', 'Input should be a valid number, unable to parse string as a number');
      const [type, msg] = TYPE_ERRORS[expected] ?? ['value_error', `Input should be a valid ${expected}`];
      return item(type, msg);
    }
    case 'minLength':
      return item(
        'string_too_short',
        `String should have at least ${String(p.limit)} character${p.limit === 1 ? '' : 's'}`,
        { min_length: p.limit },
      );
    case 'maxLength':
      return item(
        'string_too_long',
        `String should have at most ${String(p.limit)} character${p.limit === 1 ? '' : 's'}`,
        { max_length: p.limit },
      );
    case 'minimum':
      return item('greater_than_equal', `Input should be greater than or equal to ${String(p.limit)}`, { ge: p.limit });
    case 'exclusiveMinimum':
      return item('greater_than', `Input should be greater than ${String(p.limit)}`, { gt: p.limit });
    case 'maximum':
      return item('less_than_equal', `Input should be less than or equal to ${String(p.limit)}`, { le: p.limit });
    case 'exclusiveMaximum':
      return item('less_than', `Input should be less than ${String(p.limit)}`, { lt: p.limit });
    case 'enum': {
      const expected = quoteList(Array.isArray(p.allowedValues) ? p.allowedValues : []);
      return item('enum', `Input should be ${expected}`, { expected });
    }
    case 'const':
      return item('literal_error', `Input should be ${quoteList([p.allowedValue])}`, {
        expected: quoteList([p.allowedValue]),
      });
    case 'pattern':
      return item('string_pattern_mismatch', `String should match pattern '${String(p.pattern)}'`, {
        pattern: p.pattern,
      });
    case 'format':
      if (p.format === 'uuid') return item('uuid_parsing', 'Input should be a valid UUID');
      if (p.format === 'date-time') return item('datetime_parsing', 'Input should be a valid datetime');
      return item('value_error', `Value error, invalid ${String(p.format)}`);
    case 'additionalProperties':
      return item('extra_forbidden', 'Extra inputs are not permitted');
    case 'minItems':
      return item('too_short', `List should have at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}`);
    case 'maxItems':
      return item('too_long', `List should have at most ${String(p.limit)} item${p.limit === 1 ? '' : 's'}`);
    default:
      return item('value_error', `Value error, ${e.message ?? 'invalid value'}`);
  }
}

export function validationError(items: FastApiValidationItem[]): RawResult {
  return { status: 422, body: { detail: items } };
}

export const aideerErrors: ApiErrors = {
  validation: (errors) => {
    // A failed anyOf/oneOf also lists each branch's failure; keep the specific ones.
    const specific = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf');
    const seen = new Set<string>();
    const items = (specific.length ? specific : errors).map(toFastApiItem).filter((it) => {
      const key = JSON.stringify([it.type, it.loc]);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return validationError(items);
  },
  unauthorized: (failure) =>
    failure
      ? detail(failure.status, failure.message, failure.headers)
      : detail(401, 'Not authenticated', { 'WWW-Authenticate': 'Bearer' }),
  notFound: () => detail(404, 'Not Found'),
  methodNotAllowed: (allowed) =>
    detail(405, 'Method Not Allowed', allowed.length ? { Allow: allowed.join(', ') } : undefined),
  malformedBody: (kind, message) => {
    if (kind === 'form')
      return validationError([
        { type: 'value_error', loc: ['body'], msg: 'Value error, the form body could not be parsed', input: null },
      ]);
    const pos = /position (\d+)/.exec(message);
    return validationError([
      {
        type: 'json_invalid',
        loc: ['body', pos ? Number(pos[1]) : 0],
        msg: 'JSON decode error',
        input: {},
        ctx: { error: 'Expecting value' },
      },
    ]);
  },
  payloadTooLarge: () => detail(413, 'Request body too large'),
  internal: () => detail(500, 'Internal Server Error'),
};
