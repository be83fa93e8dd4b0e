// AIDeer users: the only module that reads or writes `aideer_users` (credits: credits.ts).
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { uniqueViolation } from '../../dbErrors.ts';
import { forUpdate, prepare, type Prepared } from '../../db.ts';
import type { UserRow } from './rows.ts';

/** Where a new user starts (the file ships in static/). */
export const DEFAULT_AVATAR = '/static/avatars/default.webp';

export type NewUser = Pick<UserRow, 'username' | 'permission'> &
  Partial<Pick<UserRow, 'nickname' | 'password_hash' | 'wechat_openid' | 'wechat_session_key'>>;
export type UserPatch = Partial<
  Pick<UserRow, 'username' | 'permission' | 'nickname' | 'password_hash' | 'avatar' | 'wechat_session_key'>
>;

/** The unique column a write collided on, as an outcome. */
function taken(err: unknown): 'usernameTaken' | 'openidTaken' | undefined {
  const column = uniqueViolation(err);
  if (column === 'username') return 'usernameTaken';
  if (column === 'wechat_openid') return 'openidTaken';
  return undefined;
}

export class UserStore {
  // Every authenticated request reads its user: prepared once, not built by knex each time. Read
  // fresh each time (no cache), so a deleted user is refused at once on every instance.
  private readonly userById: Prepared<UserRow>;

  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {
    this.userById = prepare<UserRow>(db, 'SELECT * FROM aideer_users WHERE id = ?');
  }

  byId(id: number): Promise<UserRow | undefined> {
    return this.userById.first(id);
  }

  byUsername(username: string): Promise<UserRow | undefined> {
    return this.db('aideer_users').where({ username }).first();
  }

  byOpenid(openid: string): Promise<UserRow | undefined> {
    return this.db('aideer_users').where({ wechat_openid: openid }).first();
  }

  list(offset: number, limit: number): Promise<UserRow[]> {
    return this.db('aideer_users').orderBy('id', 'asc').offset(offset).limit(limit);
  }

  /** A new user, or the unique column that is taken (also under a race). */
  async insert(fields: NewUser): Promise<UserRow | 'usernameTaken' | 'openidTaken'> {
    const row = {
      nickname: null,
      password_hash: null,
      ...fields,
      avatar: DEFAULT_AVATAR,
      credits_left: 0,
      created_at: this.now(),
    };
    try {
      const [user] = await this.db('aideer_users').insert(row).returning('*');
      return user;
    } catch (err) {
      const column = taken(err);
      if (column) return column;
      throw err;
    }
  }

  /** Changes the user's row (nothing when gone); 'usernameTaken' when a new name is in use. */
  async update(id: number, patch: UserPatch): Promise<'updated' | 'usernameTaken'> {
    if (!Object.keys(patch).length) return 'updated';
    try {
      await this.db('aideer_users').where({ id }).update(patch);
      return 'updated';
    } catch (err) {
      if (taken(err) === 'usernameTaken') return 'usernameTaken';
      throw err;
    }
  }

  /** Points the user at a new avatar; answers the one it replaces (undefined when the user is gone). */
  async swapAvatar(id: number, avatar: string): Promise<string | undefined> {
    return this.db.transaction(async (trx) => {
      const row = await forUpdate(trx, trx('aideer_users').select('avatar').where({ id })).first();
      if (!row) return undefined;
      await trx('aideer_users').where({ id }).update({ avatar });
      return row.avatar;
    });
  }

  /** Deletes the user and everything that hangs off it (foreign keys cascade), in one statement. */
  async delete(id: number): Promise<boolean> {
    return (await this.db('aideer_users').where({ id }).delete()) === 1;
  }

  async usersOfAvatar(avatar: string): Promise<number> {
    const row = await this.db('aideer_users').where({ avatar }).count({ n: '*' }).first();
    return Number(row?.n ?? 0);
  }

  /** The user of a WeChat openid, registered on first sight; the session key is kept current (A9). */
  async wechatUser(openid: string, sessionKey: string): Promise<UserRow> {
    const existing = await this.byOpenid(openid);
    if (existing) {
      await this.update(existing.id, { wechat_session_key: sessionKey });
      return { ...existing, wechat_session_key: sessionKey };
    }
    for (;;) {
      const username = `wechat_${crypto.randomInt(10_000_000, 100_000_000)}`;
      const user = await this.insert({
        username,
        permission: 1,
        wechat_openid: openid,
        wechat_session_key: sessionKey,
      });
      if (user === 'usernameTaken') continue;
      // The same openid signed up concurrently: use that user.
      if (user === 'openidTaken') return this.wechatUser(openid, sessionKey);
      return user;
    }
  }
}
