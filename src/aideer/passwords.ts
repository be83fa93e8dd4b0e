// Password hashing with bcrypt: hashes imported from the original (passlib, `$2b$`) verify as-is.
import bcrypt from 'bcrypt';

export class Passwords {
  constructor(private readonly rounds: number) {}

  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.rounds);
  }

  /** False for a user without a password (WeChat sign-up), as the original. */
  async verify(password: string, hash: string | null): Promise<boolean> {
    if (!hash) return false;
    try {
      return await bcrypt.compare(password, hash);
    } catch {
      return false;
    }
  }
}
