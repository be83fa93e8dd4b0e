// The account tables (oneapi_users, oneapi_tokens, oneapi_phone_codes): the only code that reads or
// writes them. The rules of codes, registration and login are in domain/accounts.ts.
import type { Knex } from 'knex';
import { prepare, type Prepared } from '../../db.ts';
import { uniqueViolation } from '../../dbErrors.ts';
import type { CodePurpose, PhoneCodeRow, TokenRow, UserRow } from './rows.ts';

/** The columns of a user that requests are given: the row less its times. */
const USER_COLUMNS = [
  'id',
  'username',
  'display_name',
  'role',
  'status',
  'group',
  'school',
  'college',
  'phone',
] as const;
export type AccountUser = Pick<UserRow, (typeof USER_COLUMNS)[number]>;
export type ProfileFields = Partial<Pick<UserRow, 'display_name' | 'school' | 'college'>>;

/** An insert broke the unique constraint of `column`; `error` is the database's own. */
export class Taken {
  constructor(
    readonly column: string,
    readonly error: unknown,
  ) {}
}

/** The rows of `db.raw`: an array on SQLite, a result holding them on Postgres. */
function rawRows(result: unknown): unknown[] {
  if (Array.isArray(result)) return result;
  const held = typeof result === 'object' && result !== null && 'rows' in result ? result.rows : undefined;
  return Array.isArray(held) ? held : [];
}

/** The account statements, on the pool or on one transaction. */
export class AccountTables {
  constructor(protected readonly db: Knex) {}

  userByPhone(phone: string): Promise<AccountUser | undefined> {
    return this.db('oneapi_users')
      .select(...USER_COLUMNS)
      .where({ phone })
      .first();
  }

  /**
   * Stores the code in place of the phone's earlier one, unless that one was sent after
   * `sentAfter`; whether it was stored. One conditional statement, so two concurrent sends cannot
   * both pass.
   */
  async putCode(code: PhoneCodeRow, sentAfter?: number): Promise<boolean> {
    const result: unknown = await this.db.raw(
      `INSERT INTO oneapi_phone_codes (phone, purpose, code_hash, attempts, sent_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (phone) DO UPDATE SET purpose = excluded.purpose, code_hash = excluded.code_hash,
         attempts = excluded.attempts, sent_at = excluded.sent_at, expires_at = excluded.expires_at
       ${sentAfter !== undefined ? 'WHERE oneapi_phone_codes.sent_at <= ?' : ''}
       RETURNING phone`,
      [
        code.phone,
        code.purpose,
        code.code_hash,
        code.attempts,
        code.sent_at,
        code.expires_at,
        ...(sentAfter !== undefined ? [sentAfter] : []),
      ],
    );
    return rawRows(result).length > 0;
  }

  async deleteCode(phone: string): Promise<void> {
    await this.db('oneapi_phone_codes').where({ phone }).delete();
  }

  /** Deletes the phone's code if it is this one, still live and tried fewer than `maxAttempts` times. */
  async takeCode(
    code: { phone: string; purpose: CodePurpose; code_hash: string },
    now: number,
    maxAttempts: number,
  ): Promise<boolean> {
    const deleted = await this.db('oneapi_phone_codes')
      .where(code)
      .andWhere('expires_at', '>', now)
      .andWhere('attempts', '<', maxAttempts)
      .delete();
    return deleted === 1;
  }

  async countAttempt(phone: string): Promise<void> {
    await this.db('oneapi_phone_codes').where({ phone }).increment('attempts', 1);
  }

  async insertUser(user: Omit<UserRow, 'id'>): Promise<void> {
    await this.db('oneapi_users').insert(user);
  }

  /** The usernames taken among `base` and `base_<anything>`. */
  async usernamesLike(base: string): Promise<string[]> {
    const rows = await this.db('oneapi_users')
      .select('username')
      .where('username', base)
      .orWhere('username', 'like', `${base}_%`);
    return rows.map((r) => r.username);
  }

  async updateUser(id: number, fields: ProfileFields & Pick<UserRow, 'updated_at'>): Promise<void> {
    await this.db('oneapi_users').where({ id }).update(fields);
  }

  async deleteExpiredTokens(userId: number, now: number): Promise<void> {
    await this.db('oneapi_tokens').where('user_id', userId).andWhere('expires_at', '<=', now).delete();
  }

  async insertToken(token: Omit<TokenRow, 'id'>): Promise<void> {
    await this.db('oneapi_tokens').insert(token);
  }

  async deleteToken(tokenHash: string): Promise<void> {
    await this.db('oneapi_tokens').where('token_hash', tokenHash).delete();
  }
}

export class AccountStore extends AccountTables {
  // The lookup of every authenticated request, by the token's hash (unique index): prepared once.
  private readonly tokenUser: Prepared<AccountUser>;

  constructor(db: Knex) {
    super(db);
    const columns = USER_COLUMNS.map((c) => `u."${c}"`).join(', ');
    this.tokenUser = prepare(
      db,
      `SELECT ${columns} FROM oneapi_tokens t JOIN oneapi_users u ON u.id = t.user_id
       WHERE t.token_hash = ? AND t.expires_at > ?`,
    );
  }

  /** The user of the token with this hash, if the token is live at `now`. */
  userByToken(tokenHash: string, now: number): Promise<AccountUser | undefined> {
    return this.tokenUser.first(tokenHash, now);
  }

  /** Inserts the user; Taken when its phone or username is already someone's. */
  async addUser(user: Omit<UserRow, 'id'>): Promise<'added' | Taken> {
    try {
      await this.insertUser(user);
      return 'added';
    } catch (err) {
      const column = uniqueViolation(err);
      if (column === undefined) throw err;
      return new Taken(column, err);
    }
  }

  /**
   * Runs `work` in one transaction, committed when it resolves. A unique constraint it broke comes
   * back a Taken, once the transaction is rolled back; any other error is thrown.
   */
  async transaction<T>(work: (tables: AccountTables) => Promise<T>): Promise<T | Taken> {
    try {
      return await this.db.transaction((trx) => work(new AccountTables(trx)));
    } catch (err) {
      const column = uniqueViolation(err);
      if (column === undefined) throw err;
      return new Taken(column, err);
    }
  }
}
