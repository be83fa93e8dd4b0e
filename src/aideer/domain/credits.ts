// Credits and redeem codes (A7, A8): codes are case-insensitive (kept upper-cased); a code
// redeems once.
import type { CreditStore } from '../store/credits.ts';
import type { CreditRecordRow } from '../store/rows.ts';

export class Credits {
  constructor(private readonly store: CreditStore) {}

  of(userId: number): Promise<{ records: CreditRecordRow[]; creditsLeft: number }> {
    return this.store.of(userId);
  }

  /** The credits the code gave, or 'invalid' for an unknown or used code. */
  async redeem(userId: number, given: string): Promise<number | 'invalid'> {
    const code = given.toUpperCase();
    return (await this.store.redeem(userId, code, `Add: Redeem credit, code: ${code}`)) ?? 'invalid';
  }

  /** The value of an unused code, or 'invalid'. */
  async valueOf(given: string): Promise<number | 'invalid'> {
    return (await this.store.codeValue(given.toUpperCase())) ?? 'invalid';
  }

  /** Creates a code, or gives an unused one a new value; 'used' when it was already redeemed. */
  put(given: string, value: number): Promise<'ok' | 'used'> {
    return this.store.putCode(given.toUpperCase(), value);
  }

  delete(given: string): Promise<void> {
    return this.store.deleteCode(given.toUpperCase());
  }
}
