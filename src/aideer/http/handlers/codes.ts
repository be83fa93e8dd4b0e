// The `code` tag: redeem codes (decision A8). Looking one up is public but rate-limited (in index.ts).
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { Credits } from '../../domain/credits.ts';

export function codesHandlers({ credits }: { credits: Credits }) {
  return {
    readRedeemCode: async ({ params }) => {
      const value = await credits.valueOf(params.code);
      if (value === 'invalid') return detail(422, `Invalid redeem code: ${params.code.toUpperCase()}`);
      return { status: 200, body: { redeem_code: params.code, value } };
    },

    createRedeemCode: async ({ body }) => {
      if ((await credits.put(body.redeem_code, body.value)) === 'used') return detail(400, 'Redeem code already used');
      return { status: 200, body: { redeem_code: body.redeem_code, value: body.value } };
    },

    deleteRedeemCode: async ({ params }) => {
      await credits.delete(params.code);
      return { status: 200, body: { message: `Redeem code ${params.code} deleted successfully` } };
    },
  } satisfies Partial<AideerHandlers>;
}
