// Bearer JWT authentication for AIDeer (decisions A1, A11) through passport-http-bearer, bound as
// the spec's OAuth2PasswordBearer scheme. Failures answer exactly as the original FastAPI service.
import type { Request } from 'express';
import passport from 'passport';
import { Strategy as BearerStrategy } from 'passport-http-bearer';
import { AuthFailure } from '../../http/bind.ts';
import type { Tokens } from '../domain/tokens.ts';
import { isAdmin } from '../domain/access.ts';
import type { UserRow } from '../store/rows.ts';
import type { UserStore } from '../store/users.ts';

export interface AideerAuth {
  /** The caller. Secured operations always have it; public ones must not read it. */
  user: UserRow;
  /** Set when a token was sent where it is optional (POST /users) but refused. */
  failure?: AuthFailure;
}

/** No bearer token at all: a refusal where one is required, anonymous where it is optional. */
class NoCredentials extends AuthFailure {
  constructor() {
    super(401, 'Not authenticated', { 'WWW-Authenticate': 'Bearer' });
  }
}

/**
 * The spec's `admin` scope marks the operations only admins may call; it is checked here, with
 * authentication, so it comes before request validation as in the original.
 */
export function bearerAuthenticator(
  users: UserStore,
  tokens: Tokens,
): (req: Request, operation: { operationId: string; scopes: string[] }) => Promise<{ user: UserRow }> {
  const authenticator = new passport.Passport();
  for (const kind of ['access', 'refresh'] as const) {
    authenticator.use(
      `aideer-${kind}`,
      new BearerStrategy((token, done) => {
        const claims = tokens.verify(token);
        if (!claims) return done(new AuthFailure(401, 'Could not validate credentials: Invalid token'));
        if (kind === 'access' && claims.refresh)
          return done(new AuthFailure(400, 'Could not validate credentials: Access token required'));
        if (kind === 'refresh' && !claims.refresh)
          return done(new AuthFailure(400, 'Could not validate credentials: Refresh token required'));
        users.byId(claims.userId).then(
          (user) =>
            user ? done(null, user) : done(new AuthFailure(401, 'Could not validate credentials: User not found')),
          (err: unknown) => done(err),
        );
      }),
    );
  }
  return (req, { operationId, scopes }) =>
    new Promise((resolve, reject) => {
      // Only the header counts (as FastAPI's OAuth2PasswordBearer): passport-http-bearer would also
      // take `access_token` from the query string or body, where tokens end up in logs.
      const headersOnly = { headers: { authorization: req.headers.authorization } };
      const kind = operationId === 'wechatRefresh' ? 'refresh' : 'access';
      const failed = (err: unknown) => reject(err instanceof Error ? err : new Error(`passport: ${String(err)}`));
      // passport types what authenticate() returns as `any`, leaving its shape to the framework adapter.
      const authenticate = authenticator.authenticate(
        `aideer-${kind}`,
        { session: false },
        (err: unknown, user: UserRow | false) => {
          if (err) return failed(err);
          if (!user) return reject(new NoCredentials());
          if (scopes.includes('admin') && !isAdmin(user))
            return reject(new AuthFailure(403, 'Insufficient permissions'));
          resolve({ user });
        },
      ) as (req: typeof headersOnly, res: object, next: (err?: unknown) => void) => void;
      authenticate(headersOnly, {}, failed);
    });
}

/** What handlers receive as `auth`, from the scheme's result (a user, or the error it was refused with). */
export function aideerAuthFrom(security: Record<string, unknown>): AideerAuth {
  // bindApi types each scheme's result unknown; this one is what bearerAuthenticator answers (or its error).
  const result = security.OAuth2PasswordBearer as { user?: UserRow; error?: unknown } | undefined;
  const failure =
    result?.error instanceof AuthFailure && !(result.error instanceof NoCredentials) ? result.error : undefined;
  // Typed as always there: secured operations always have it, and public ones do not read it.
  return { user: result?.user as UserRow, failure };
}
