// AIDeer credits and redeem codes (A7, A8): the only module that reads or writes
// `aideer_credit_records` and `aideer_redeem_codes`, and the balance in `aideer_users`.
import type { Knex } from 'knex';
import { isPostgres, prepare, transact, type Executor, type Prepared } from '../../db.ts';
import type { CreditRecordRow } from './rows.ts';

// A code counts as used once `redeemed_at` is set (`redeemed_by` is cleared if that user is
// deleted): of any number of concurrent redemptions, this conditional UPDATE lets exactly one claim it.
const CLAIM_SQL =
  'UPDATE aideer_redeem_codes SET redeemed_by = ?, redeemed_at = ? WHERE code = ? AND redeemed_at IS NULL RETURNING value';
const RECORD_SQL =
  'INSERT INTO aideer_credit_records (user_id, amount, description, create_time, task_id) VALUES (?, ?, ?, ?, ?)';
const CREDIT_SQL = 'UPDATE aideer_users SET credits_left = credits_left + ? WHERE id = ?';
// Postgres claims, records and credits in one statement (one round trip, no BEGIN and COMMIT):
// the record and the credit take their value from the claim, so an unclaimed code writes nothing.
const REDEEM_PG_SQL = `WITH claimed AS (${CLAIM_SQL}),
  record AS (INSERT INTO aideer_credit_records (user_id, amount, description, create_time, task_id)
    SELECT ?, value, ?, ?, NULL FROM claimed),
  credit AS (UPDATE aideer_users SET credits_left = credits_left + claimed.value FROM claimed WHERE aideer_users.id = ?)
  SELECT value FROM claimed`;

export class CreditStore {
  // Redeeming and charging are hot writes: prepared once (src/db.ts).
  private readonly claim: Prepared<{ value: number }>;
  private readonly record: Prepared<never>;
  private readonly credit: Prepared<never>;
  private readonly redeemPg?: Prepared<{ value: number }>;

  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {
    this.claim = prepare(db, CLAIM_SQL);
    this.record = prepare(db, RECORD_SQL);
    this.credit = prepare(db, CREDIT_SQL);
    if (isPostgres(db)) this.redeemPg = prepare(db, REDEEM_PG_SQL);
  }

  /** The user's credit records and balance, read from one snapshot so the two always agree (A7). */
  async of(userId: number): Promise<{ records: CreditRecordRow[]; creditsLeft: number }> {
    return this.db.transaction(
      async (trx) => {
        const records = await trx('aideer_credit_records').where({ user_id: userId }).orderBy('id', 'asc');
        const user = await trx('aideer_users').select('credits_left').where({ id: userId }).first();
        return { records, creditsLeft: user?.credits_left ?? 0 };
      },
      isPostgres(this.db) ? { isolationLevel: 'repeatable read' } : undefined,
    );
  }

  /**
   * Adds `amount` (negative for a charge) to the balance with its record, in the caller's
   * transaction. A task's charge names the task: the record's unique task id refuses a second one.
   */
  async change(trx: Executor, userId: number, amount: number, description: string, taskId?: string): Promise<void> {
    await this.record.in(trx).run(userId, amount, description, this.now(), taskId ?? null);
    await this.credit.in(trx).run(amount, userId);
  }

  /**
   * Redeems an unused code (upper-cased): one conditional UPDATE claims it, so of any number of
   * concurrent redemptions exactly one succeeds; the credit and its record are written in the same
   * transaction (on Postgres, the same statement). Answers the value, or undefined.
   */
  async redeem(userId: number, code: string, description: string): Promise<number | undefined> {
    const now = this.now();
    if (this.redeemPg) return (await this.redeemPg.first(userId, now, code, userId, description, now, userId))?.value;
    return transact(this.db, async (tx) => {
      const claimed = await this.claim.in(tx).first(userId, now, code);
      if (!claimed) return undefined;
      await this.change(tx, userId, claimed.value, description);
      return claimed.value;
    });
  }

  /** The value of an unused code (upper-cased). */
  async codeValue(code: string): Promise<number | undefined> {
    const row = await this.db('aideer_redeem_codes').select('value').where({ code }).whereNull('redeemed_at').first();
    return row?.value;
  }

  /** Creates a code, or gives an unused one a new value; `used` when it was already redeemed. */
  async putCode(code: string, value: number): Promise<'ok' | 'used'> {
    const written = await this.db('aideer_redeem_codes')
      .insert({ code, value, created_at: this.now(), redeemed_by: null, redeemed_at: null })
      .onConflict('code')
      .merge({ value })
      .where('aideer_redeem_codes.redeemed_at', null)
      .returning('code');
    return written.length ? 'ok' : 'used';
  }

  async deleteCode(code: string): Promise<void> {
    await this.db('aideer_redeem_codes').where({ code }).delete();
  }
}
