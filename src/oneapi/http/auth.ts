// Header authentication for every protected One-API route (decisions O2, O3): `Authorization`
// (raw token or `Bearer <token>`) plus `UserID`, which must name the token's user.
import type { Request } from 'express';
import { AuthFailure } from '../../http/bind.ts';
import { STATUS, type Accounts, type AccountUser } from '../domain/accounts.ts';
import { MESSAGES } from './envelope.ts';

export interface OneApiAuth {
  user: AccountUser;
  token: string;
}

export function headerAuthenticator(accounts: Accounts): (req: Request) => Promise<OneApiAuth> {
  // Both security schemes (AccessToken, UserId) run for one request: authenticate once.
  const inFlight = new WeakMap<Request, Promise<OneApiAuth>>();
  const authenticate = async (req: Request): Promise<OneApiAuth> => {
    const raw = req.headers.authorization?.trim() ?? '';
    const token = raw.replace(/^Bearer(\s+|$)/i, '').trim();
    if (!token) throw new AuthFailure(401, MESSAGES.noToken);
    const user = token.length <= 256 ? await accounts.userByToken(token) : undefined;
    if (!user) throw new AuthFailure(401, MESSAGES.badToken);
    const userId = req.headers.userid;
    if (userId === undefined || (typeof userId === 'string' && userId.trim() === ''))
      throw new AuthFailure(401, MESSAGES.noUserId);
    if (typeof userId !== 'string' || !/^[1-9][0-9]{0,9}$/.test(userId.trim()))
      throw new AuthFailure(401, MESSAGES.badUserId);
    if (Number(userId.trim()) !== user.id) throw new AuthFailure(401, MESSAGES.userMismatch);
    if (user.status === STATUS.banned) throw new AuthFailure(403, MESSAGES.banned);
    return { user, token };
  };
  return (req) => {
    let p = inFlight.get(req);
    if (!p) inFlight.set(req, (p = authenticate(req)));
    return p;
  };
}
