// The `user` tag: phone verification, registration, login, profile, logout (decisions O2–O6).
import type { OneApiHandlers } from '../types.ts';
import type { Accounts } from '../../domain/accounts.ts';
import type { SmsSender } from '../../adapters/sms.ts';
import { fail, MESSAGES } from '../envelope.ts';

export interface UserDeps {
  accounts: Accounts;
  sms: SmsSender;
  /** Test environments get the code back in the response (PHONE_CODE_MODE=fixed). */
  returnCode: boolean;
  cooldownSeconds: number;
}

export function userHandlers({ accounts, sms, returnCode, cooldownSeconds }: UserDeps) {
  return {
    sendPhoneVerification: async ({ query }) => {
      const { phone, purpose } = query;
      const registered = Boolean(await accounts.findByPhone(phone));
      if (purpose === 'login' && !registered) return fail(400, MESSAGES.phoneNotRegistered);
      if (purpose === 'register' && registered) return fail(400, MESSAGES.phoneTaken);
      const issued = await accounts.issueCode(phone, purpose);
      if ('cooldown' in issued) return fail(429, MESSAGES.codeCooldown, { 'Retry-After': String(cooldownSeconds) });
      try {
        await sms.send(phone, issued.code, purpose);
      } catch (err) {
        await accounts.withdrawCode(phone);
        throw err;
      }
      return {
        status: 200,
        body: { success: true, message: '验证码已发送', ...(returnCode ? { data: issued.code } : {}) },
      };
    },

    registerUser: async ({ body }) => {
      const outcome = await accounts.register({ ...body, code: body.phone_verification_code });
      if (outcome === 'phoneTaken') return fail(400, MESSAGES.phoneTaken);
      if (outcome === 'badCode') return fail(400, MESSAGES.badCode);
      return { status: 200, body: { success: true, message: '注册成功' } };
    },

    loginUser: async ({ body }) => {
      const outcome = await accounts.login(body.phone, body.phone_verification_code);
      if (outcome === 'notRegistered') return fail(400, MESSAGES.phoneNotRegistered);
      if (outcome === 'badCode') return fail(400, MESSAGES.badCode);
      if (outcome === 'banned') return fail(403, MESSAGES.banned);
      return {
        status: 200,
        body: { success: true, message: '登录成功', data: { ...outcome.user, access_token: outcome.token } },
      };
    },

    // The user was read with the token, in this request.
    getSelf: ({ auth }) => ({
      status: 200,
      body: { success: true, message: '', data: { ...auth.user, access_token: auth.token } },
    }),

    updateSelf: async ({ auth, body }) => {
      // The spec requires at least one of the three fields (validation answers 请提供要更新的字段).
      await accounts.updateProfile(auth.user.id, body);
      return { status: 200, body: { success: true, message: '更新成功' } };
    },

    logoutUser: async ({ auth }) => {
      await accounts.revokeToken(auth.token);
      return { status: 200, body: { success: true, message: '登出成功' } };
    },
  } satisfies Partial<OneApiHandlers>;
}
