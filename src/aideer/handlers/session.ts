// The `session` tag: OAuth2 password log-in, WeChat log-in and refresh (decisions A9, A11).
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { Users } from '../users.ts';
import type { Passwords } from '../passwords.ts';
import type { Tokens } from '../tokens.ts';
import { WeChatError, type WeChat } from '../wechat.ts';

export interface SessionDeps {
  users: Users;
  passwords: Passwords;
  tokens: Tokens;
  wechat: WeChat;
}

export function sessionHandlers({ users, passwords, tokens, wechat }: SessionDeps) {
  const fromWeChat = (err: unknown) => {
    if (err instanceof WeChatError) return detail(err.status, err.message);
    throw err;
  };

  return {
    loginForAccessToken: async ({ body }) => {
      const user = await users.byUsername(body.username);
      // The same answer for an unknown user and a wrong password; bcrypt runs either way.
      const ok = await passwords.verify(body.password, user?.password_hash ?? null);
      if (!user || !ok) return detail(401, 'Incorrect username or password');
      return { status: 200, body: { access_token: tokens.issue(user.id, 'access'), token_type: 'bearer' } };
    },

    wechatLogin: async ({ query }) => {
      try {
        const session = await wechat.codeToSession(query.code);
        const user = await users.wechatUser(session.openid, session.sessionKey);
        return { status: 200, body: { access_token: tokens.issue(user.id, 'access'), token_type: 'bearer', refresh_token: tokens.issue(user.id, 'refresh') } };
      } catch (err) {
        return fromWeChat(err);
      }
    },

    wechatRefresh: async ({ auth, req }) => {
      const { user } = auth;
      if (!user.wechat_openid || !user.wechat_session_key) return detail(401, 'Wechat session expired');
      try {
        await wechat.checkSession(user.wechat_openid, user.wechat_session_key);
      } catch (err) {
        return fromWeChat(err);
      }
      // The refresh token presented is valid (the security handler checked it): hand it back.
      const presented = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
      return { status: 200, body: { access_token: tokens.issue(user.id, 'access'), token_type: 'bearer', refresh_token: presented } };
    },
  } satisfies Partial<AideerHandlers>;
}
