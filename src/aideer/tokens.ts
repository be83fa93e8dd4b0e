// AIDeer JWTs (decision A11): HS256 with `sub`, `iat`, `exp`; refresh tokens carry `refresh: true`.
import crypto from 'node:crypto';
import jwt from 'jsonwebtoken';

export interface TokenSettings {
  secret: string;
  accessMinutes: number;
  refreshMinutes: number;
}

export interface TokenClaims {
  sub: string;
  refresh?: boolean;
}

export class Tokens {
  // Given a string, jsonwebtoken tries it as a PEM public key on every verify (a failed parse and
  // an exception) before taking it as an HMAC secret: the key object is built once instead.
  private readonly key: crypto.KeyObject;

  constructor(private readonly settings: TokenSettings) {
    this.key = crypto.createSecretKey(Buffer.from(settings.secret, 'utf8'));
  }

  issue(userId: number, kind: 'access' | 'refresh'): string {
    const claims: TokenClaims = kind === 'refresh' ? { sub: String(userId), refresh: true } : { sub: String(userId) };
    const minutes = kind === 'refresh' ? this.settings.refreshMinutes : this.settings.accessMinutes;
    return jwt.sign(claims, this.key, { algorithm: 'HS256', expiresIn: minutes * 60 });
  }

  /** The claims of a well-signed, unexpired token with a numeric subject, or undefined. */
  verify(token: string): { userId: number; refresh: boolean } | undefined {
    try {
      const claims = jwt.verify(token, this.key, { algorithms: ['HS256'] }) as jwt.JwtPayload;
      const userId = Number(claims.sub);
      if (typeof claims.sub !== 'string' || !Number.isSafeInteger(userId) || userId < 1) return undefined;
      return { userId, refresh: claims.refresh === true };
    } catch {
      return undefined;
    }
  }
}
