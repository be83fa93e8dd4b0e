// Compile-time tests, checked by `tsc --noEmit` (CI): each @ts-expect-error marks something the
// handler types must refuse. If the types ever let one through, tsc fails on the unused directive.
import type { operations } from '../../generated/oneapi.ts';
import type { Handler, HandlerMap } from '../../src/http/types.ts';

type Logout = operations['logoutUser'];

export const documented: Handler<Logout, unknown> = () => ({
  status: 200,
  body: { success: true, message: '登出成功' },
});

export const undocumentedStatus: Handler<Logout, unknown> = () => ({
  // @ts-expect-error 404 is not a status logoutUser documents
  status: 404,
  body: { success: false, message: 'x' },
});

// @ts-expect-error a misspelt field in the documented body
export const wrongField: Handler<Logout, unknown> = () => ({
  status: 200,
  body: { success: true, mesage: '登出成功' },
});

// @ts-expect-error the error envelope where the 200 body is documented
export const wrongShape: Handler<Logout, unknown> = () => ({ status: 200, body: { success: false, message: 'x' } });

// @ts-expect-error a 200 without its body
export const missingBody: Handler<Logout, unknown> = () => ({ status: 200 });

export const query: Handler<operations['sendPhoneVerification'], unknown> = ({ query }) => {
  const purpose: 'register' | 'login' = query.purpose;
  // @ts-expect-error a query parameter the operation does not have
  void query.page;
  return { status: 400, body: { success: false, message: purpose } };
};

declare const handler: Handler<never, unknown>;
// @ts-expect-error a handler map missing operations does not satisfy the complete map
export const incomplete = { logoutUser: handler } satisfies HandlerMap<operations, unknown>;
