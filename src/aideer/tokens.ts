// AIDeer JWTs (decision A11): HS256 with `sub`, `iat`, `exp`; refresh tokens carry `refresh: true`.
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
  constructor(private readonly settings: TokenSettings) {}

  issue(userId: number, kind: 'access' | 'refresh'): string {
    const claims: TokenClaims = kind === 'refresh' ? { sub: String(userId), refresh: true } : { sub: String(userId) };
    const minutes = kind === 'refresh' ? this.settings.refreshMinutes : this.settings.accessMinutes;
    return jwt.sign(claims, this.settings.secret, { algorithm: 'HS256', expiresIn: minutes * 60 });
  }

  /** The claims of a well-signed, unexpired token with a numeric subject, or undefined. */
  verify(token: string): { userId: number; refresh: boolean } | undefined {
    try {
      const claims = jwt.verify(token, this.settings.secret, { algorithms: ['HS256'] }) as jwt.JwtPayload;
      const userId = Number(claims.sub);
      if (typeof claims.sub !== 'string' || !Number.isSafeInteger(userId) || userId < 1) return undefined;
      return { userId, refresh: claims.refresh === true };
    } catch {
      return undefined;
    }
  }
}
