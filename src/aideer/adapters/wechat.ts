// WeChat mini-program server API (decision A9): code-to-session at log-in, and checksession for
// refresh, signed with HMAC-SHA256 of an empty string keyed by the session key. The server access
// token is kept in the database so several instances share one (WeChat invalidates older tokens).
import crypto from 'node:crypto';
import type { Knex } from 'knex';

export class WeChatError extends Error {
  constructor(
    readonly status: 401 | 500,
    message: string,
  ) {
    super(message);
  }
}

interface WeChatReply {
  errcode?: number;
  errmsg?: string;
  [key: string]: unknown;
}

const TOKEN_KEY = 'wechat_access_token';

export interface WeChatSettings {
  baseUrl: string;
  appId?: string;
  secret?: string;
}

const TIMEOUT_MS = 5000;

export class WeChat {
  constructor(
    private readonly db: Knex,
    private readonly settings: WeChatSettings,
    private readonly now: () => number = Date.now,
  ) {}

  private credentials(): { appid: string; secret: string } {
    if (!this.settings.appId || !this.settings.secret)
      throw new WeChatError(500, 'WeChat server error: WECHAT_APPID and WECHAT_SECRET are not configured');
    return { appid: this.settings.appId, secret: this.settings.secret };
  }

  /** GET a WeChat endpoint; WeChat answers JSON served as text/plain. */
  private async call(pathname: string, params: Record<string, string>): Promise<WeChatReply> {
    const url = new URL(this.settings.baseUrl + pathname);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch {
      throw new WeChatError(500, 'WeChat server error: unreachable');
    }
    if (res.status !== 200) {
      await res.body?.cancel(); // release the connection
      throw new WeChatError(500, `WeChat server error: ${res.status}`);
    }
    try {
      // WeChat's JSON; each caller checks the fields it reads (errcode, openid…) before using them.
      return JSON.parse(await res.text()) as WeChatReply;
    } catch {
      throw new WeChatError(500, 'WeChat server error: unreadable response');
    }
  }

  private static failure(reply: WeChatReply): WeChatError {
    return new WeChatError(500, `WeChat server error: ${reply.errcode}, ${reply.errmsg ?? ''}`);
  }

  /** Exchanges a log-in code for the user's openid and session key. */
  async codeToSession(code: string): Promise<{ openid: string; sessionKey: string }> {
    const reply = await this.call('/sns/jscode2session', {
      ...this.credentials(),
      js_code: code,
      grant_type: 'authorization_code',
    });
    if (reply.errcode === 40029) throw new WeChatError(401, 'Invalid code');
    if (reply.errcode) throw WeChat.failure(reply);
    if (typeof reply.openid !== 'string' || typeof reply.session_key !== 'string')
      throw new WeChatError(500, 'WeChat server error: unreadable response');
    return { openid: reply.openid, sessionKey: reply.session_key };
  }

  /** Fails with 401 `Wechat session expired` when WeChat no longer knows the session. */
  async checkSession(openid: string, sessionKey: string): Promise<void> {
    const signature = crypto.createHmac('sha256', sessionKey).update('').digest('hex');
    for (let attempt = 0; ; attempt++) {
      const reply = await this.call('/wxa/checksession', {
        access_token: await this.serverToken(attempt > 0),
        signature,
        openid,
        sig_method: 'hmac_sha256',
      });
      if (!reply.errcode) return;
      if (reply.errcode === 87009) throw new WeChatError(401, 'Wechat session expired');
      // The cached server token was revoked or expired early: fetch a new one, once.
      if ((reply.errcode === 40001 || reply.errcode === 42001) && attempt === 0) continue;
      throw WeChat.failure(reply);
    }
  }

  /** The server access token, from the database while it has more than 300 s left. */
  private async serverToken(forceRefresh: boolean): Promise<string> {
    const now = this.now();
    if (!forceRefresh) {
      const cached = await this.db('aideer_kv')
        .where({ key: TOKEN_KEY })
        .andWhere('expires_at', '>', now + 300_000)
        .first();
      if (cached) return cached.value;
    }
    const reply = await this.call('/cgi-bin/token', { grant_type: 'client_credential', ...this.credentials() });
    if (reply.errcode || typeof reply.access_token !== 'string') throw WeChat.failure(reply);
    const expiresAt = now + (Number(reply.expires_in ?? 7200) - 60) * 1000;
    await this.db('aideer_kv')
      .insert({ key: TOKEN_KEY, value: reply.access_token, expires_at: expiresAt })
      .onConflict('key')
      .merge();
    return reply.access_token;
  }
}
