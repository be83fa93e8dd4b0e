// The `code` tag: redeem codes (decision A8). Looking one up is public but rate-limited (in index.ts).
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { Users } from '../users.ts';

export function codesHandlers({ users }: { users: Users }) {
  return {
    readRedeemCode: async ({ params }) => {
      const value = await users.codeValue(params.code);
      if (value === undefined) return detail(422, `Invalid redeem code: ${params.code.toUpperCase()}`);
      return { status: 200, body: { redeem_code: params.code, value } };
    },

    createRedeemCode: async ({ body }) => {
      if ((await users.putCode(body.redeem_code, body.value)) === 'used') return detail(400, 'Redeem code already used');
      return { status: 200, body: { redeem_code: body.redeem_code, value: body.value } };
    },

    deleteRedeemCode: async ({ params }) => {
      await users.deleteCode(params.code);
      return { status: 200, body: { message: `Redeem code ${params.code} deleted successfully` } };
    },
  } satisfies Partial<AideerHandlers>;
}
