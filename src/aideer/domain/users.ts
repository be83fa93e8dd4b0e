// The rules of AIDeer accounts (A2, A10, A12), as outcomes the handlers map to answers: open
// sign-up, but only admins create admins or make users admins; users change themselves, admins
// anyone; an avatar file is removed once no user points at it.
import { InvalidImage, type AvatarStore } from '../adapters/avatars.ts';
import type { UserRow } from '../store/rows.ts';
import type { UserStore } from '../store/users.ts';
import { ADMIN, isAdmin } from './access.ts';
import type { Passwords } from './passwords.ts';

type Caller = Pick<UserRow, 'id' | 'permission'>;

export interface SignUp {
  username: string;
  password: string;
  permission: number;
  nickname: string | null;
}

export interface ProfileChange {
  username: string;
  permission?: number;
  nickname?: string | null;
}

export class Users {
  constructor(
    private readonly store: UserStore,
    private readonly passwords: Passwords,
    private readonly avatars: AvatarStore,
  ) {}

  byId(id: number): Promise<UserRow | undefined> {
    return this.store.byId(id);
  }

  list(offset: number, limit: number): Promise<UserRow[]> {
    return this.store.list(offset, limit);
  }

  /** `caller` is undefined for an anonymous sign-up. */
  async signUp(caller: Caller | undefined, fields: SignUp): Promise<UserRow | 'forbidden' | 'usernameTaken'> {
    if (fields.permission >= ADMIN && !(caller && isAdmin(caller))) return 'forbidden';
    const user = await this.store.insert({
      username: fields.username,
      permission: fields.permission,
      nickname: fields.nickname,
      password_hash: await this.passwords.hash(fields.password),
    });
    // No openid is given here, so only the name can collide.
    return user === 'openidTaken' ? 'usernameTaken' : user;
  }

  /** The user whose name and password these are; bcrypt runs whether or not the name exists. */
  async logIn(username: string, password: string): Promise<UserRow | 'incorrect'> {
    const user = await this.store.byUsername(username);
    const ok = await this.passwords.verify(password, user?.password_hash ?? null);
    return user && ok ? user : 'incorrect';
  }

  /** A user with a password must give it; one without (WeChat sign-up) sets a first one. */
  async changeOwnPassword(
    user: UserRow,
    old: string | null | undefined,
    next: string,
  ): Promise<'changed' | 'oldRequired' | 'oldIncorrect'> {
    if (user.password_hash) {
      if (old == null) return 'oldRequired';
      if (!(await this.passwords.verify(old, user.password_hash))) return 'oldIncorrect';
    }
    await this.store.update(user.id, { password_hash: await this.passwords.hash(next) });
    return 'changed';
  }

  async resetPassword(userId: number, next: string): Promise<'changed' | 'notFound'> {
    const target = await this.store.byId(userId);
    if (!target) return 'notFound';
    await this.store.update(target.id, { password_hash: await this.passwords.hash(next) });
    return 'changed';
  }

  /** Stores the image as the user's avatar; the one it replaces goes once nobody uses it. */
  async setAvatar(userId: number, image: Buffer): Promise<'set' | 'invalidImage'> {
    let avatar: string;
    try {
      avatar = await this.avatars.save(image);
    } catch (err) {
      if (err instanceof InvalidImage) return 'invalidImage';
      throw err;
    }
    const previous = await this.store.swapAvatar(userId, avatar);
    if (previous && previous !== avatar && (await this.store.usersOfAvatar(previous)) === 0)
      await this.avatars.remove(previous);
    return 'set';
  }

  async update(
    caller: Caller,
    userId: number,
    change: ProfileChange,
  ): Promise<UserRow | 'notFound' | 'forbidden' | 'forbiddenAdmin' | 'usernameTaken'> {
    const target = await this.store.byId(userId);
    if (!target) return 'notFound';
    if (target.id !== caller.id && !isAdmin(caller)) return 'forbidden';
    if (change.permission === ADMIN && !isAdmin(caller)) return 'forbiddenAdmin';
    const patch: { username: string; permission?: number; nickname?: string | null } = { username: change.username };
    if (change.permission !== undefined) patch.permission = change.permission;
    if (change.nickname !== undefined) patch.nickname = change.nickname;
    if ((await this.store.update(target.id, patch)) === 'usernameTaken') return 'usernameTaken';
    return { ...target, ...patch };
  }

  /** Deletes the user with everything of theirs; their avatar file goes once nobody uses it. */
  async delete(userId: number): Promise<'deleted' | 'notFound'> {
    const target = await this.store.byId(userId);
    if (!target) return 'notFound';
    await this.store.delete(target.id);
    if ((await this.store.usersOfAvatar(target.avatar)) === 0) await this.avatars.remove(target.avatar);
    return 'deleted';
  }

  /** Creates the configured admin (ADMIN_USER, ADMIN_PASSWD) unless a user of that name exists. */
  async ensureAdmin(admin: { user?: string; password?: string }): Promise<UserRow | 'unset' | 'exists'> {
    if (!admin.user || !admin.password) return 'unset';
    const user = await this.store.insert({
      username: admin.user,
      permission: ADMIN,
      password_hash: await this.passwords.hash(admin.password),
    });
    return typeof user === 'string' ? 'exists' : user;
  }
}
