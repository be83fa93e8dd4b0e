// AIDeer users, their credits and redeem codes: the only module that reads or writes those tables.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { components } from '../../generated/aideer.ts';
import { uniqueViolation } from '../dbErrors.ts';
import type { Passwords } from './passwords.ts';
import { forUpdate, isPostgres, prepare, transact, type Executor, type Prepared } from '../db.ts';

export type UserRead = components['schemas']['UserRead'];
export type CreditRecordRead = components['schemas']['CreditRecordRead'];

export const ADMIN = 2;
export const DEFAULT_AVATAR = '/static/avatars/default.webp';

export interface UserRow {
  id: number;
  username: string;
  permission: number;
  nickname: string | null;
  password_hash: string | null;
  wechat_openid: string | null;
  wechat_session_key: string | null;
  avatar: string;
  credits_left: number;
  created_at: number;
}

export function userRead(u: UserRow): UserRead {
  return { username: u.username, permission: u.permission, nickname: u.nickname, id: u.id, avatar: u.avatar, credits_left: u.credits_left };
}

export class UsernameTaken extends Error {}

// A code counts as used once `redeemed_at` is set: of any number of concurrent redemptions, this
// conditional UPDATE lets exactly one claim it.
const CLAIM_SQL = 'UPDATE aideer_redeem_codes SET redeemed_by = ?, redeemed_at = ? WHERE code = ? AND redeemed_at IS NULL RETURNING value';
const RECORD_SQL = 'INSERT INTO aideer_credit_records (user_id, amount, description, create_time, task_id) VALUES (?, ?, ?, ?, ?)';
const CREDIT_SQL = 'UPDATE aideer_users SET credits_left = credits_left + ? WHERE id = ?';
// Postgres claims, records and credits in one statement (one round trip, no BEGIN and COMMIT):
// the record and the credit take their value from the claim, so an unclaimed code writes nothing.
const REDEEM_PG_SQL = `WITH claimed AS (${CLAIM_SQL}),
  record AS (INSERT INTO aideer_credit_records (user_id, amount, description, create_time, task_id) SELECT ?, value, ?, ?, NULL FROM claimed),
  credit AS (UPDATE aideer_users SET credits_left = credits_left + claimed.value FROM claimed WHERE aideer_users.id = ?)
  SELECT value FROM claimed`;

export class Users {
  // Every authenticated request reads its user: prepared once, not built by knex each time. Read
  // fresh each time (no cache), so a deleted user is refused at once on every instance.
  private readonly userById: Prepared<UserRow>;
  // Redeeming and charging are hot writes: prepared too (src/db.ts).
  private readonly claim: Prepared<{ value: number }>;
  private readonly record: Prepared<never>;
  private readonly credit: Prepared<never>;
  private readonly redeemPg?: Prepared<{ value: number }>;

  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {
    this.userById = prepare<UserRow>(db, 'SELECT * FROM aideer_users WHERE id = ?');
    this.claim = prepare(db, CLAIM_SQL);
    this.record = prepare(db, RECORD_SQL);
    this.credit = prepare(db, CREDIT_SQL);
    if (isPostgres(db)) this.redeemPg = prepare(db, REDEEM_PG_SQL);
  }

  byId(id: number): Promise<UserRow | undefined> {
    return this.userById.first(id);
  }

  byUsername(username: string): Promise<UserRow | undefined> {
    return this.db('aideer_users').where({ username }).first();
  }

  list(offset: number, limit: number): Promise<UserRow[]> {
    return this.db('aideer_users').orderBy('id', 'asc').offset(offset).limit(limit);
  }

  /** Inserts a user; throws UsernameTaken when the name is in use (also under a race). */
  async create(fields: { username: string; permission: number; nickname?: string | null; password_hash?: string | null; wechat_openid?: string; wechat_session_key?: string }): Promise<UserRow> {
    try {
      const [row] = await this.db('aideer_users')
        .insert({ nickname: null, password_hash: null, ...fields, avatar: DEFAULT_AVATAR, credits_left: 0, created_at: this.now() })
        .returning('*');
      return row as UserRow;
    } catch (err) {
      if (uniqueViolation(err) === 'username') throw new UsernameTaken();
      throw err;
    }
  }

  /** Changes the user's row; throws UsernameTaken when a new name is in use. */
  async update(id: number, patch: Partial<Pick<UserRow, 'username' | 'permission' | 'nickname' | 'password_hash' | 'avatar' | 'wechat_session_key'>>): Promise<void> {
    try {
      if (Object.keys(patch).length) await this.db('aideer_users').where({ id }).update(patch);
    } catch (err) {
      if (uniqueViolation(err) === 'username') throw new UsernameTaken();
      throw err;
    }
  }

  /** Points the user at a new avatar; answers the one it replaces. */
  async swapAvatar(id: number, avatar: string): Promise<string | undefined> {
    return this.db.transaction(async (trx) => {
      const row = await forUpdate(trx, trx('aideer_users').select('avatar').where({ id })).first();
      if (!row) return undefined;
      await trx('aideer_users').where({ id }).update({ avatar });
      return row.avatar as string;
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
    const existing = await this.db('aideer_users').where({ wechat_openid: openid }).first();
    if (existing) {
      await this.update(existing.id, { wechat_session_key: sessionKey });
      return { ...existing, wechat_session_key: sessionKey };
    }
    for (;;) {
      const username = `wechat_${crypto.randomInt(10_000_000, 100_000_000)}`;
      try {
        return await this.create({ username, permission: 1, wechat_openid: openid, wechat_session_key: sessionKey });
      } catch (err) {
        if (err instanceof UsernameTaken) continue;
        // The same openid signed up concurrently: use that user.
        if (uniqueViolation(err) === 'wechat_openid') return this.wechatUser(openid, sessionKey);
        throw err;
      }
    }
  }

  // ── credits ──

  /** The user's credit records and balance, read from one snapshot so the two always agree (A7). */
  async credits(userId: number): Promise<{ credit_records: CreditRecordRead[]; credits_left: number }> {
    return this.db.transaction(
      async (trx) => {
        const records = await trx('aideer_credit_records').where({ user_id: userId }).orderBy('id', 'asc');
        const user = await trx('aideer_users').select('credits_left').where({ id: userId }).first();
        return {
          credit_records: records.map((r: { id: number; user_id: number; amount: number; description: string; create_time: number }) => ({
            user_id: r.user_id,
            amount: r.amount,
            description: r.description,
            create_time: new Date(r.create_time).toISOString(),
            id: r.id,
          })),
          credits_left: user?.credits_left ?? 0,
        };
      },
      isPostgres(this.db) ? { isolationLevel: 'repeatable read' } : undefined,
    );
  }

  /**
   * Adds `amount` (negative for a charge) to the balance with its record, in the caller's
   * transaction. A task's charge names the task: the record's unique task id refuses a second one.
   */
  async changeCredits(trx: Executor, userId: number, amount: number, description: string, taskId?: string): Promise<void> {
    await this.record.in(trx).run(userId, amount, description, this.now(), taskId ?? null);
    await this.credit.in(trx).run(amount, userId);
  }

  // ── redeem codes (A8) ──

  // A code counts as used once `redeemed_at` is set; `redeemed_by` is cleared if that user is deleted.

  /**
   * Redeems an unused code: one conditional UPDATE claims it, so of any number of concurrent
   * redemptions exactly one succeeds; the credit and its record are written in the same transaction
   * (on Postgres, the same statement).
   */
  async redeem(userId: number, given: string): Promise<number | undefined> {
    const code = given.toUpperCase();
    const description = `Add: Redeem credit, code: ${code}`;
    const now = this.now();
    if (this.redeemPg) return (await this.redeemPg.first(userId, now, code, userId, description, now, userId))?.value;
    return transact(this.db, async (tx) => {
      const claimed = await this.claim.in(tx).first(userId, now, code);
      if (!claimed) return undefined;
      await this.changeCredits(tx, userId, claimed.value, description);
      return claimed.value;
    });
  }

  /** The value of an unused code. */
  async codeValue(given: string): Promise<number | undefined> {
    const row = await this.db('aideer_redeem_codes').select('value').where({ code: given.toUpperCase() }).whereNull('redeemed_at').first();
    return row?.value;
  }

  /** Creates a code, or gives an unused one a new value; `used` when it was already redeemed. */
  async putCode(given: string, value: number): Promise<'ok' | 'used'> {
    const code = given.toUpperCase();
    const written = await this.db('aideer_redeem_codes')
      .insert({ code, value, created_at: this.now() })
      .onConflict('code')
      .merge({ value })
      .where('aideer_redeem_codes.redeemed_at', null)
      .returning('code');
    return written.length ? 'ok' : 'used';
  }

  async deleteCode(given: string): Promise<void> {
    await this.db('aideer_redeem_codes').where({ code: given.toUpperCase() }).delete();
  }
}

/** Creates the configured admin unless a user of that name exists. */
export async function ensureAdmin(users: Users, passwords: Passwords, admin: { user?: string; password?: string }) {
  if (!admin.user || !admin.password) return 'unset' as const;
  try {
    return await users.create({ username: admin.user, permission: ADMIN, password_hash: await passwords.hash(admin.password) });
  } catch (err) {
    if (err instanceof UsernameTaken) return 'exists' as const;
    throw err;
  }
}
