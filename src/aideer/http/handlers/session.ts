// The `session` tag: OAuth2 password log-in, WeChat log-in and refresh (decisions A9, A11).
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { Users } from '../../domain/users.ts';
import type { UserStore } from '../../store/users.ts';
import type { Tokens } from '../../domain/tokens.ts';
import { WeChatError, type WeChat } from '../../adapters/wechat.ts';

export interface SessionDeps {
  users: Users;
  /** WeChat users are found (or registered) by openid. */
  userStore: UserStore;
  tokens: Tokens;
  wechat: WeChat;
}

export function sessionHandlers({ users, userStore, tokens, wechat }: SessionDeps) {
  const fromWeChat = (err: unknown) => {
    if (err instanceof WeChatError) return detail(err.status, err.message);
    throw err;
  };

  return {
    loginForAccessToken: async ({ body }) => {
      const user = await users.logIn(body.username, body.password);
      // The same answer for an unknown user and a wrong password.
      if (user === 'incorrect') return detail(401, 'Incorrect username or password');
      return { status: 200, body: { access_token: tokens.issue(user.id, 'access'), token_type: 'bearer' } };
    },

    wechatLogin: async ({ query }) => {
      try {
        const session = await wechat.codeToSession(query.code);
        const user = await userStore.wechatUser(session.openid, session.sessionKey);
        return {
          status: 200,
          body: {
            access_token: tokens.issue(user.id, 'access'),
            token_type: 'bearer',
            refresh_token: tokens.issue(user.id, 'refresh'),
          },
        };
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
      return {
        status: 200,
        body: { access_token: tokens.issue(user.id, 'access'), token_type: 'bearer', refresh_token: presented },
      };
    },
  } satisfies Partial<AideerHandlers>;
}
