// The `users` tag: sign-up, profiles, passwords, avatars, credits (decisions A2, A8, A10).
import type { Request } from 'express';
import { detail } from '../errors.ts';
import { requestOrigin } from '../../http/origin.ts';
import type { AideerHandlers } from '../types.ts';
import { ADMIN, userRead, UsernameTaken, type Users } from '../users.ts';
import type { Passwords } from '../passwords.ts';
import { InvalidImage, type AvatarStore } from '../avatars.ts';

export interface UsersDeps {
  users: Users;
  passwords: Passwords;
  avatars: AvatarStore;
  /** Origin for avatar redirects; the request's own when unset. */
  publicBaseUrl?: string;
}

const USER_NOT_FOUND = () => detail(404, 'User not found');

export function usersHandlers({ users, passwords, avatars, publicBaseUrl }: UsersDeps) {
  // An odd Host header gets a relative Location rather than being echoed back.
  const redirectTo = (req: Request, avatar: string) => ({ status: 307 as const, headers: { Location: `${requestOrigin(req, publicBaseUrl) ?? ''}${avatar}` } });

  return {
    listUsers: async ({ query }) => ({ status: 200, body: (await users.list(query.offset ?? 0, query.limit ?? 10)).map(userRead) }),

    createUser: async ({ auth, body }) => {
      // The token is optional (open sign-up, A2), but one that is sent must be valid.
      if (auth.failure) return detail(auth.failure.status as 400 | 401, auth.failure.message);
      const caller = auth.user as typeof auth.user | undefined;
      const { permission } = body;
      if (permission >= ADMIN && (!caller || caller.permission < ADMIN)) return detail(403, 'Insufficient permissions: Cannot create admin user');
      try {
        const user = await users.create({ username: body.username, permission, nickname: body.nickname ?? null, password_hash: await passwords.hash(body.password) });
        return { status: 200, body: userRead(user) };
      } catch (err) {
        if (err instanceof UsernameTaken) return detail(400, 'Username already exists');
        throw err;
      }
    },

    readUserMe: async ({ auth }) => ({ status: 200, body: userRead(auth.user) }),

    updateMyPassword: async ({ auth, body }) => {
      if (auth.user.password_hash) {
        if (body.old_password == null) return detail(400, 'Old password is required');
        if (!(await passwords.verify(body.old_password, auth.user.password_hash))) return detail(400, 'Old password is incorrect');
      }
      await users.update(auth.user.id, { password_hash: await passwords.hash(body.new_password) });
      return { status: 200, body: { message: 'Password updated successfully' } };
    },

    getMyAvatar: async ({ auth, req }) => redirectTo(req, auth.user.avatar),

    setMyAvatar: async ({ auth, req }) => {
      const file = ((req.files as Express.Multer.File[] | undefined) ?? []).find((f) => f.fieldname === 'avatar_file');
      if (!file) return { status: 422, body: { detail: [{ type: 'missing', loc: ['body', 'avatar_file'], msg: 'Field required', input: null }] } };
      let avatar: string;
      try {
        avatar = await avatars.save(file.buffer);
      } catch (err) {
        if (err instanceof InvalidImage) return detail(422, 'Invalid image file');
        throw err;
      }
      const previous = await users.swapAvatar(auth.user.id, avatar);
      if (previous && previous !== avatar && (await users.usersOfAvatar(previous)) === 0) await avatars.remove(previous);
      return { status: 200, body: { message: 'Avatar updated successfully' } };
    },

    getMyCredits: async ({ auth }) => ({ status: 200, body: await users.credits(auth.user.id) }),

    redeemCredits: async ({ auth, body }) => {
      const value = await users.redeem(auth.user.id, body.redeem_code);
      if (value === undefined) return detail(422, `Invalid redeem code: ${body.redeem_code.toUpperCase()}`);
      return { status: 200, body: { message: `Redeem ${value} credits successfully` } };
    },

    readUser: async ({ params }) => {
      const user = await users.byId(params.user_id);
      return user ? { status: 200, body: userRead(user) } : USER_NOT_FOUND();
    },

    updateUser: async ({ auth, params, body }) => {
      const target = await users.byId(params.user_id);
      if (!target) return USER_NOT_FOUND();
      const isAdmin = auth.user.permission >= ADMIN;
      if (target.id !== auth.user.id && !isAdmin) return detail(403, 'Insufficient permissions: You cannot update other users');
      if (body.permission === ADMIN && !isAdmin) return detail(403, 'Insufficient permissions: You cannot set user permission to admin');
      const patch: Parameters<Users['update']>[1] = { username: body.username };
      if (body.permission !== undefined) patch.permission = body.permission;
      if (body.nickname !== undefined) patch.nickname = body.nickname;
      try {
        await users.update(target.id, patch);
        return { status: 200, body: userRead({ ...target, ...patch }) };
      } catch (err) {
        if (err instanceof UsernameTaken) return detail(400, 'Username already exists');
        throw err;
      }
    },

    deleteUser: async ({ params }) => {
      const target = await users.byId(params.user_id);
      if (!target) return USER_NOT_FOUND();
      await users.delete(target.id);
      if ((await users.usersOfAvatar(target.avatar)) === 0) await avatars.remove(target.avatar);
      return { status: 200, body: { message: 'User deleted successfully' } };
    },

    resetUserPassword: async ({ params, body }) => {
      const target = await users.byId(params.user_id);
      if (!target) return USER_NOT_FOUND();
      await users.update(target.id, { password_hash: await passwords.hash(body.new_password) });
      return { status: 200, body: { message: 'Password updated successfully' } };
    },

    getUserAvatar: async ({ params, req }) => {
      const user = await users.byId(params.user_id);
      return user ? redirectTo(req, user.avatar) : USER_NOT_FOUND();
    },
  } satisfies Partial<AideerHandlers>;
}
