// AIDeer JWTs (decision A11): HS256 with `sub`, `iat`, `exp`; refresh tokens carry `refresh: true`.
import { createSigner, createVerifier } from 'fast-jwt';

export interface TokenSettings {
  secret: string;
  accessMinutes: number;
  refreshMinutes: number;
}

export interface TokenClaims {
  sub: string;
  refresh?: boolean;
}

type Sign = (claims: TokenClaims) => string;

export class Tokens {
  private readonly sign: Record<'access' | 'refresh', Sign>;
  /**
   * Built once with its key, as is each signer. A client sends the same token on every request
   * until it expires, so the verifier keeps the outcome of the last 1,000 tokens it checked (fast-jwt's
   * cache: an entry ends when its token expires, and after 10 minutes at most). What may change
   * while a token lives (the user deleted, their permission) is read from the user's row on every request.
   */
  private readonly verifyToken: (token: string) => Record<string, unknown>;

  constructor(settings: TokenSettings) {
    // With a key (not a key callback) fast-jwt's signer is synchronous.
    const signer = (minutes: number): Sign =>
      createSigner<TokenClaims>({ key: settings.secret, algorithm: 'HS256', expiresIn: minutes * 60_000 });
    this.sign = { access: signer(settings.accessMinutes), refresh: signer(settings.refreshMinutes) };
    this.verifyToken = createVerifier({ key: settings.secret, algorithms: ['HS256'], cache: 1000 });
  }

  issue(userId: number, kind: 'access' | 'refresh'): string {
    return this.sign[kind](kind === 'refresh' ? { sub: String(userId), refresh: true } : { sub: String(userId) });
  }

  /** The claims of a well-signed, unexpired token with a numeric subject, or undefined. */
  verify(token: string): { userId: number; refresh: boolean } | undefined {
    let claims: Record<string, unknown>;
    try {
      claims = this.verifyToken(token);
    } catch {
      return undefined;
    }
    const userId = Number(claims.sub);
    if (typeof claims.sub !== 'string' || !Number.isSafeInteger(userId) || userId < 1) return undefined;
    return { userId, refresh: claims.refresh === true };
  }
}
