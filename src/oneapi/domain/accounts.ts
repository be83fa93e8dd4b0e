// One-API accounts (decisions O3–O6): verification codes, registration, login, tokens and the root
// user. The rules live here; the rows are read and written by store/accounts.ts.
import crypto from 'node:crypto';
import {
  Taken,
  type AccountStore,
  type AccountTables,
  type AccountUser,
  type ProfileFields,
} from '../store/accounts.ts';
import type { CodePurpose, Role, UserRow, UserStatus } from '../store/rows.ts';

export type Purpose = CodePurpose;
export type { AccountUser };

export const ROLE = { common: 1, admin: 10, root: 100 } as const satisfies Record<string, Role>;
export const STATUS = { enabled: 1, banned: 2 } as const satisfies Record<string, UserStatus>;

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
  constructor(
    private readonly store: AccountStore,
    private readonly settings: AccountSettings,
    private readonly now: () => number = Date.now,
  ) {}

  private codeHash(phone: string, purpose: Purpose, code: string): string {
    return crypto.createHmac('sha256', this.settings.secret).update(`${phone}:${purpose}:${code}`).digest('hex');
  }

  findByPhone(phone: string): Promise<AccountUser | undefined> {
    return this.store.userByPhone(phone);
  }

  /** Stores a new code for the phone, replacing any earlier one, unless one was sent within the cooldown. */
  async issueCode(phone: string, purpose: Purpose): Promise<{ code: string } | { cooldown: true }> {
    const random = () => String(crypto.randomInt(0, 1_000_000)).padStart(6, '0');
    const code = this.settings.codeMode === 'fixed' ? FIXED_CODE : random();
    const now = this.now();
    const cooldownMs = this.settings.codeCooldownSeconds * 1000;
    // With no cooldown nothing is refused: `now` is read before the statement waits for a
    // connection, so a concurrent send for the phone may have stored a later time first.
    const stored = await this.store.putCode(
      {
        phone,
        purpose,
        code_hash: this.codeHash(phone, purpose, code),
        attempts: 0,
        sent_at: now,
        expires_at: now + this.settings.codeTtlSeconds * 1000,
      },
      cooldownMs > 0 ? now - cooldownMs : undefined,
    );
    return stored ? { code } : { cooldown: true };
  }

  /** Forgets a code whose delivery failed, so the user may ask again at once. */
  withdrawCode(phone: string): Promise<void> {
    return this.store.deleteCode(phone);
  }

  /**
   * Consumes the phone's code if `code` is right, live and not worn out by wrong tries; a wrong
   * code counts as a try. Runs in the caller's transaction, so a failed registration restores it.
   */
  private async consumeCode(tables: AccountTables, phone: string, purpose: Purpose, code: string): Promise<boolean> {
    const live = { phone, purpose, code_hash: this.codeHash(phone, purpose, code) };
    if (await tables.takeCode(live, this.now(), this.settings.codeMaxAttempts)) return true;
    await tables.countAttempt(phone);
    return false;
  }

  /** Creates the user if the code is right; `phoneTaken` also covers a concurrent registration. */
  async register(input: {
    phone: string;
    code: string;
    display_name?: string;
    school?: string;
    college?: string;
  }): Promise<'ok' | 'badCode' | 'phoneTaken'> {
    if (await this.findByPhone(input.phone)) return 'phoneTaken';
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.store.transaction(async (tables) => {
        if (!(await this.consumeCode(tables, input.phone, 'register', input.code))) return 'badCode' as const;
        const now = this.now();
        await tables.insertUser({
          username: await this.freeUsername(tables, input.phone),
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
      if (!(outcome instanceof Taken)) return outcome;
      if (outcome.column === 'phone') return 'phoneTaken';
      // Another registration took the same username between our read and insert: pick again.
      if (outcome.column === 'username' && attempt < 5) continue;
      throw outcome.error;
    }
  }

  /** `user_` + the last 4 digits of the phone, with a numeric suffix when that is taken (O6). */
  private async freeUsername(tables: AccountTables, phone: string): Promise<string> {
    const base = `user_${phone.slice(-4)}`;
    const taken = new Set(await tables.usernamesLike(base));
    if (!taken.has(base)) return base;
    for (let n = 2; ; n++) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
  }

  /** Checks the code and issues a new token for this device; earlier tokens stay valid (O5). */
  async login(
    phone: string,
    code: string,
  ): Promise<{ user: AccountUser; token: string } | 'notRegistered' | 'badCode' | 'banned'> {
    const user = await this.findByPhone(phone);
    if (!user) return 'notRegistered';
    const outcome = await this.store.transaction(async (tables) => {
      if (!(await this.consumeCode(tables, phone, 'login', code))) return 'badCode' as const;
      if (user.status === STATUS.banned) return 'banned' as const;
      const now = this.now();
      const token = crypto.randomBytes(32).toString('base64url');
      await tables.deleteExpiredTokens(user.id, now);
      await tables.insertToken({
        user_id: user.id,
        token_hash: sha256(token),
        created_at: now,
        expires_at: now + this.settings.tokenTtlDays * 86_400_000,
      });
      return { user, token };
    });
    if (outcome instanceof Taken) throw outcome.error;
    return outcome;
  }

  /**
   * The live token's user, or nothing. No cache, so a logout or a ban takes effect at once on
   * every instance.
   */
  userByToken(token: string): Promise<AccountUser | undefined> {
    return this.store.userByToken(sha256(token), this.now());
  }

  revokeToken(token: string): Promise<void> {
    return this.store.deleteToken(sha256(token));
  }

  async updateProfile(id: number, fields: ProfileFields): Promise<void> {
    const patch: ProfileFields = {};
    for (const k of ['display_name', 'school', 'college'] as const) if (fields[k] !== undefined) patch[k] = fields[k];
    await this.store.updateUser(id, { ...patch, updated_at: this.now() });
  }

  /** Creates the root user for ONEAPI_ROOT_PHONE if no user has that phone (O6). */
  async ensureRoot(phone: string): Promise<'created' | 'exists'> {
    if (await this.findByPhone(phone)) return 'exists';
    const now = this.now();
    const root = (username: string): Omit<UserRow, 'id'> => ({
      username,
      display_name: 'root',
      phone,
      role: ROLE.root,
      status: STATUS.enabled,
      group: 'default',
      school: '',
      college: '',
      created_at: now,
      updated_at: now,
    });
    const added = await this.store.addUser(root('root'));
    if (added instanceof Taken && added.column === 'username') {
      // `root` is taken (by a root user of another phone): this one gets the phone's last digits.
      const again = await this.store.addUser(root(`root_${phone.slice(-4)}`));
      if (again instanceof Taken) throw again.error;
    } else if (added instanceof Taken && added.column !== 'phone') throw added.error;
    return 'created';
  }
}
