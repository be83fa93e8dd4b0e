// Password hashing with bcrypt: hashes imported from the original (passlib, `$2b$`) verify as-is.
import crypto from 'node:crypto';
import bcrypt from 'bcrypt';

export class Passwords {
  /** Compared against when a user has no password, so the answer takes as long either way. */
  private standIn?: Promise<string>;

  constructor(private readonly rounds: number) {}

  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.rounds);
  }

  /**
   * False for a user without a password (WeChat sign-up, or no such user), as the original; bcrypt
   * runs in every case, so the time taken does not tell which names exist.
   */
  async verify(password: string, hash: string | null): Promise<boolean> {
    try {
      // Made on first need, not at start-up (a cost-12 hash takes a quarter of a second).
      this.standIn ??= bcrypt.hash(crypto.randomBytes(16).toString('hex'), this.rounds);
      const matches = await bcrypt.compare(password, hash ?? (await this.standIn));
      return matches && hash !== null;
    } catch {
      return false; // a stored hash bcrypt cannot read
    }
  }
}
