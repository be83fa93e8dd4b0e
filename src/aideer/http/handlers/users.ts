// The `users` tag: sign-up, profiles, passwords, avatars, credits (decisions A2, A8, A10); the
// rules are in domain/users.ts and domain/credits.ts.
import type { Request } from 'express';
import { detail } from '../errors.ts';
import { requestOrigin } from '../../../http/origin.ts';
import type { AideerHandlers } from '../types.ts';
import type { Users } from '../../domain/users.ts';
import type { Credits } from '../../domain/credits.ts';
import { iso } from '../../../time.ts';
import { userRead } from '../wire.ts';

export interface UsersDeps {
  users: Users;
  credits: Credits;
  /** Origin for avatar redirects; the request's own when unset. */
  publicBaseUrl?: string;
}

const USER_NOT_FOUND = () => detail(404, 'User not found');
const PASSWORD_CHANGED = { status: 200 as const, body: { message: 'Password updated successfully' } };
const refusals = {
  notFound: USER_NOT_FOUND,
  usernameTaken: () => detail(400, 'Username already exists'),
  createAdmin: () => detail(403, 'Insufficient permissions: Cannot create admin user'),
  forbidden: () => detail(403, 'Insufficient permissions: You cannot update other users'),
  forbiddenAdmin: () => detail(403, 'Insufficient permissions: You cannot set user permission to admin'),
  oldRequired: () => detail(400, 'Old password is required'),
  oldIncorrect: () => detail(400, 'Old password is incorrect'),
  invalidCode: (code: string) => detail(422, `Invalid redeem code: ${code.toUpperCase()}`),
};

/** The uploaded files multer parsed (the binding runs it for multipart operations). */
function uploads(req: Request): Express.Multer.File[] {
  return Array.isArray(req.files) ? req.files : [];
}

export function usersHandlers({ users, credits, publicBaseUrl }: UsersDeps) {
  // An odd Host header gets a relative Location rather than being echoed back.
  const redirectTo = (req: Request, avatar: string) => ({
    status: 307 as const,
    headers: { Location: `${requestOrigin(req, publicBaseUrl) ?? ''}${avatar}` },
  });

  return {
    listUsers: async ({ query }) => ({
      status: 200,
      body: (await users.list(query.offset ?? 0, query.limit ?? 10)).map(userRead),
    }),

    createUser: async ({ auth, body }) => {
      // The token is optional (open sign-up, A2), but one that is sent must be valid.
      // An optional token is refused only with 400 or 401 (see http/auth.ts); AuthFailure's status is any number.
      if (auth.failure) return detail(auth.failure.status as 400 | 401, auth.failure.message);
      // Set only when a valid token was sent (the operation's security is optional).
      const caller = auth.user as typeof auth.user | undefined;
      const user = await users.signUp(caller, { ...body, nickname: body.nickname ?? null });
      if (user === 'forbidden') return refusals.createAdmin();
      if (user === 'usernameTaken') return refusals.usernameTaken();
      return { status: 200, body: userRead(user) };
    },

    readUserMe: ({ auth }) => ({ status: 200, body: userRead(auth.user) }),

    updateMyPassword: async ({ auth, body }) => {
      const outcome = await users.changeOwnPassword(auth.user, body.old_password, body.new_password);
      return outcome === 'changed' ? PASSWORD_CHANGED : refusals[outcome]();
    },

    getMyAvatar: ({ auth, req }) => redirectTo(req, auth.user.avatar),

    setMyAvatar: async ({ auth, req }) => {
      const file = uploads(req).find((f) => f.fieldname === 'avatar_file');
      if (!file)
        return {
          status: 422,
          body: { detail: [{ type: 'missing', loc: ['body', 'avatar_file'], msg: 'Field required', input: null }] },
        };
      if ((await users.setAvatar(auth.user.id, file.buffer)) === 'invalidImage')
        return detail(422, 'Invalid image file');
      return { status: 200, body: { message: 'Avatar updated successfully' } };
    },

    getMyCredits: async ({ auth }) => {
      const { records, creditsLeft } = await credits.of(auth.user.id);
      const credit_records = records.map((r) => ({
        user_id: r.user_id,
        amount: r.amount,
        description: r.description,
        create_time: iso(r.create_time),
        id: r.id,
      }));
      return { status: 200, body: { credit_records, credits_left: creditsLeft } };
    },

    redeemCredits: async ({ auth, body }) => {
      const value = await credits.redeem(auth.user.id, body.redeem_code);
      if (value === 'invalid') return refusals.invalidCode(body.redeem_code);
      return { status: 200, body: { message: `Redeem ${value} credits successfully` } };
    },

    readUser: async ({ params }) => {
      const user = await users.byId(params.user_id);
      return user ? { status: 200, body: userRead(user) } : USER_NOT_FOUND();
    },

    updateUser: async ({ auth, params, body }) => {
      const user = await users.update(auth.user, params.user_id, body);
      return typeof user === 'string' ? refusals[user]() : { status: 200, body: userRead(user) };
    },

    deleteUser: async ({ params }) => {
      if ((await users.delete(params.user_id)) === 'notFound') return USER_NOT_FOUND();
      return { status: 200, body: { message: 'User deleted successfully' } };
    },

    resetUserPassword: async ({ params, body }) => {
      return (await users.resetPassword(params.user_id, body.new_password)) === 'changed'
        ? PASSWORD_CHANGED
        : USER_NOT_FOUND();
    },

    getUserAvatar: async ({ params, req }) => {
      const user = await users.byId(params.user_id);
      return user ? redirectTo(req, user.avatar) : USER_NOT_FOUND();
    },
  } satisfies Partial<AideerHandlers>;
}
