// One-API accounts: verification codes, users and access tokens (decisions O3–O6).
// The only module that reads or writes the account tables.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { uniqueViolation } from '../dbErrors.ts';
import { prepare, type Prepared } from '../db.ts';
import type { components } from '../../generated/oneapi.ts';

export type Purpose = 'register' | 'login';

/** A user as the contract shows it, less the caller's token. */
export type OneApiUser = Omit<components['schemas']['UserSelf'], 'access_token'>;

export const ROLE = { common: 1, admin: 10, root: 100 } as const;
export const STATUS = { enabled: 1, banned: 2 } as const;

const USER_COLUMNS = ['id', 'username', 'display_name', 'role', 'status', 'group', 'school', 'college', 'phone'] as const;

export interface AccountSettings {
  secret: string;
  codeMode: 'fixed' | 'random';
  codeTtlSeconds: number;
  codeMaxAttempts: number;
  codeCooldownSeconds: number;
  tokenTtlDays: number;
}

export const FIXED_CODE = '1111';

export function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

export class Accounts {
  // The lookup of every authenticated request, by the token's hash (unique index): prepared once.
  // No cache, so a logout or a ban takes effect at once on every instance.
  private readonly tokenUser: Prepared<OneApiUser>;

  constructor(
    private readonly db: Knex,
    private readonly settings: AccountSettings,
    private readonly now: () => number = Date.now,
  ) {
    const columns = USER_COLUMNS.map((c) => `u."${c}"`).join(', ');
    this.tokenUser = prepare<OneApiUser>(db, `SELECT ${columns} FROM oneapi_tokens t JOIN oneapi_users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.expires_at > ?`);
  }

  private codeHash(phone: string, purpose: Purpose, code: string): string {
    return crypto.createHmac('sha256', this.settings.secret).update(`${phone}:${purpose}:${code}`).digest('hex');
  }

  async findByPhone(phone: string, db: Knex = this.db): Promise<OneApiUser | undefined> {
    return db('oneapi_users').select(USER_COLUMNS).where({ phone }).first();
  }

  /**
   * Stores a new code for the phone, replacing any earlier one, unless one was sent within the
   * cooldown. One conditional statement, so two concurrent sends cannot both pass.
   */
  async issueCode(phone: string, purpose: Purpose): Promise<{ code: string } | { cooldown: true }> {
    const code = this.settings.codeMode === 'fixed' ? FIXED_CODE : String(crypto.randomInt(0, 1_000_000)).padStart(6, '0');
    const now = this.now();
    const cooldownMs = this.settings.codeCooldownSeconds * 1000;
    // With no cooldown nothing is refused: `now` is read before the statement waits for a
    // connection, so a concurrent send for the phone may have stored a later time first.
    const rows = await this.db.raw(
      `INSERT INTO oneapi_phone_codes (phone, purpose, code_hash, attempts, sent_at, expires_at)
       VALUES (?, ?, ?, 0, ?, ?)
       ON CONFLICT (phone) DO UPDATE SET purpose = excluded.purpose, code_hash = excluded.code_hash,
         attempts = 0, sent_at = excluded.sent_at, expires_at = excluded.expires_at
       ${cooldownMs > 0 ? 'WHERE oneapi_phone_codes.sent_at <= ?' : ''}
       RETURNING phone`,
      [phone, purpose, this.codeHash(phone, purpose, code), now, now + this.settings.codeTtlSeconds * 1000, ...(cooldownMs > 0 ? [now - cooldownMs] : [])],
    );
    const returned = Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows;
    return returned.length ? { code } : { cooldown: true };
  }

  /** Forgets a code whose delivery failed, so the user may ask again at once. */
  async withdrawCode(phone: string): Promise<void> {
    await this.db('oneapi_phone_codes').where({ phone }).delete();
  }

  /**
   * Consumes the phone's code if `code` is right, live and not worn out by wrong tries; a wrong
   * code counts as a try. Runs in the caller's transaction, so a failed registration restores it.
   */
  async consumeCode(trx: Knex, phone: string, purpose: Purpose, code: string): Promise<boolean> {
    const now = this.now();
    const hash = this.codeHash(phone, purpose, code);
    const deleted = await trx('oneapi_phone_codes')
      .where({ phone, purpose, code_hash: hash })
      .andWhere('expires_at', '>', now)
      .andWhere('attempts', '<', this.settings.codeMaxAttempts)
      .delete();
    if (deleted === 1) return true;
    await trx('oneapi_phone_codes').where({ phone }).increment('attempts', 1);
    return false;
  }

  /** Creates the user if the code is right; `phoneTaken` also covers a concurrent registration. */
  async register(input: { phone: string; code: string; display_name?: string; school?: string; college?: string }): Promise<'ok' | 'badCode' | 'phoneTaken'> {
    if (await this.findByPhone(input.phone)) return 'phoneTaken';
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction(async (trx) => {
          if (!(await this.consumeCode(trx, input.phone, 'register', input.code))) return 'badCode' as const;
          const now = this.now();
          await trx('oneapi_users').insert({
            username: await this.freeUsername(trx, input.phone),
            display_name: input.display_name ?? '',
            school: input.school ?? '',
            college: input.college ?? '',
            phone: input.phone,
            role: ROLE.common,
            status: STATUS.enabled,
            group: 'default',
            created_at: now,
            updated_at: now,
          });
          return 'ok' as const;
        });
      } catch (err) {
        const column = uniqueViolation(err);
        if (column === 'phone') return 'phoneTaken';
        // Another registration took the same username between our read and insert: pick again.
        if (column === 'username' && attempt < 5) continue;
        throw err;
      }
    }
  }

  /** `user_` + the last 4 digits of the phone, with a numeric suffix when that is taken (O6). */
  private async freeUsername(trx: Knex, phone: string): Promise<string> {
    const base = `user_${phone.slice(-4)}`;
    const taken = new Set(
      (await trx('oneapi_users').select('username').where('username', base).orWhere('username', 'like', `${base}_%`)).map((r: { username: string }) => r.username),
    );
    if (!taken.has(base)) return base;
    for (let n = 2; ; n++) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
  }

  /** Checks the code and issues a new token for this device; earlier tokens stay valid (O5). */
  async login(phone: string, code: string): Promise<{ user: OneApiUser; token: string } | 'notRegistered' | 'badCode' | 'banned'> {
    const user = await this.findByPhone(phone);
    if (!user) return 'notRegistered';
    return this.db.transaction(async (trx) => {
      if (!(await this.consumeCode(trx, phone, 'login', code))) return 'badCode' as const;
      if (user.status === STATUS.banned) return 'banned' as const;
      const now = this.now();
      const token = crypto.randomBytes(32).toString('base64url');
      await trx('oneapi_tokens').where('user_id', user.id).andWhere('expires_at', '<=', now).delete();
      await trx('oneapi_tokens').insert({ user_id: user.id, token_hash: sha256(token), created_at: now, expires_at: now + this.settings.tokenTtlDays * 86_400_000 });
      return { user, token };
    });
  }

  /** The live token's user, or nothing. */
  async userByToken(token: string): Promise<OneApiUser | undefined> {
    return this.tokenUser.first(sha256(token), this.now());
  }

  async revokeToken(token: string): Promise<void> {
    await this.db('oneapi_tokens').where('token_hash', sha256(token)).delete();
  }

  async updateProfile(id: number, fields: { display_name?: string; school?: string; college?: string }): Promise<void> {
    const patch: Record<string, unknown> = {};
    for (const k of ['display_name', 'school', 'college'] as const) if (fields[k] !== undefined) patch[k] = fields[k];
    await this.db('oneapi_users').where({ id }).update({ ...patch, updated_at: this.now() });
  }

  /** Creates the root user for ONEAPI_ROOT_PHONE if no user has that phone (O6). */
  async ensureRoot(phone: string): Promise<'created' | 'exists'> {
    if (await this.findByPhone(phone)) return 'exists';
    const now = this.now();
    try {
      await this.db('oneapi_users').insert({ username: 'root', display_name: 'root', phone, role: ROLE.root, status: STATUS.enabled, group: 'default', school: '', college: '', created_at: now, updated_at: now });
    } catch (err) {
      if (uniqueViolation(err) === 'username') {
        await this.db('oneapi_users').insert({ username: `root_${phone.slice(-4)}`, display_name: 'root', phone, role: ROLE.root, status: STATUS.enabled, group: 'default', school: '', college: '', created_at: now, updated_at: now });
      } else if (uniqueViolation(err) !== 'phone') throw err;
    }
    return 'created';
  }
}
