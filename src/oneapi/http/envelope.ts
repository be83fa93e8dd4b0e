// One-API answers everything in the envelope {success, message, data?} (decision O1).
import type { ErrorObject } from 'ajv';
import type { ApiErrors } from '../../http/bind.ts';
import type { Refusal } from '../domain/refusal.ts';

export function fail<S extends number>(status: S, message: string, headers?: Record<string, string>) {
  return { status, body: { success: false as const, message }, ...(headers ? { headers } : {}) };
}

/** Answers a Refusal (404 missing or deleted, 403 another user's) in the words of `messages`. */
export function refusalAnswer(messages: { notFound: string; forbidden: string }) {
  return (refusal: Refusal) => (refusal === 'notFound' ? fail(404, messages.notFound) : fail(403, messages.forbidden));
}

export const MESSAGES = {
  badPhone: '手机号格式错误',
  badCode: '手机验证码错误或已过期',
  phoneNotRegistered: '手机号未注册',
  phoneTaken: '手机号已被占用',
  noToken: '无权进行此操作，未提供 access token',
  badToken: '无权进行此操作，access token 无效',
  noUserId: '无权进行此操作，未提供 UserID',
  badUserId: '无权进行此操作，UserID 格式错误',
  userMismatch: '无权进行此操作，与登录用户不匹配',
  banned: '用户已被封禁',
  tooManyRequests: '请求过于频繁，请稍后再试',
  codeCooldown: '验证码发送过于频繁，请稍后再试',
  notFound: '接口不存在',
  methodNotAllowed: '请求方法不允许',
  internal: '服务器内部错误',
  payloadTooLarge: '请求体过大',
  invalidRequest: (detail: string) => `请求参数错误: ${detail}`,
} as const;

function fieldOf(e: ErrorObject): string {
  const params: Record<string, unknown> = e.params;
  if (e.keyword === 'required') return String(params.missingProperty);
  const parts = e.instancePath.split('/').filter(Boolean);
  // instancePath is /requestBody/x, /query/x, /path/x or /header/x
  return parts.slice(1).join('.') || parts[0] || '请求体';
}

function describe(e: ErrorObject): string {
  const field = fieldOf(e);
  const p: Record<string, unknown> = e.params;
  switch (e.keyword) {
    case 'required':
      return field === 'requestBody' ? '缺少请求体' : `缺少字段 ${field}`;
    case 'type':
      return `${field} 类型应为 ${String(p.type)}`;
    case 'minLength':
      return Number(p.limit) === 1 ? `${field} 不能为空` : `${field} 长度不能少于 ${String(p.limit)}`;
    case 'maxLength':
      return `${field} 长度不能超过 ${String(p.limit)}`;
    case 'minimum':
    case 'exclusiveMinimum':
      return `${field} 不能小于${e.keyword === 'minimum' ? '' : '等于'} ${String(p.limit)}`;
    case 'maximum':
    case 'exclusiveMaximum':
      return `${field} 不能大于${e.keyword === 'maximum' ? '' : '等于'} ${String(p.limit)}`;
    case 'enum':
      return `${field} 取值应为 ${[p.allowedValues].flat().map(String).join('、')}`;
    case 'pattern':
    case 'format':
      return `${field} 格式不正确`;
    case 'maxDepth':
      return `请求数据嵌套不能超过 ${String(p.limit)} 层`;
    case 'minProperties':
    case 'anyOf':
      return '请提供要更新的字段';
    default:
      return `${field} 不合法`;
  }
}

/** Any problem with a phone number gets the documented message, whichever rule it broke. */
export function validationMessage(errors: ErrorObject[]): string {
  if (errors.some((e) => fieldOf(e) === 'phone')) return MESSAGES.badPhone;
  // An anyOf failure also reports each branch's own failure; the anyOf itself says it best.
  const hasAnyOf = errors.some((e) => e.keyword === 'anyOf');
  const relevant = hasAnyOf ? errors.filter((e) => !e.schemaPath.includes('/anyOf/')) : errors;
  // One message per field: the first rule it broke (a too-large id also fails its format).
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const e of relevant) {
    const field = fieldOf(e);
    if (seen.has(field)) continue;
    seen.add(field);
    parts.push(describe(e));
    if (parts.length === 3) break;
  }
  return MESSAGES.invalidRequest(parts.join('; ') || '请求不合法');
}

export const oneapiErrors: ApiErrors = {
  validation: (errors) => fail(400, validationMessage(errors)),
  unauthorized: (failure) =>
    failure ? fail(failure.status, failure.message, failure.headers) : fail(401, MESSAGES.noToken),
  notFound: () => fail(404, MESSAGES.notFound),
  methodNotAllowed: (allowed) =>
    fail(405, MESSAGES.methodNotAllowed, allowed.length ? { Allow: allowed.join(', ') } : undefined),
  malformedBody: (kind) =>
    fail(400, MESSAGES.invalidRequest(kind === 'json' ? '请求体不是合法的 JSON' : '请求体无法解析')),
  payloadTooLarge: () => fail(413, MESSAGES.payloadTooLarge),
  internal: () => fail(500, MESSAGES.internal),
};
