// The `articles` tag: admins add articles to the shared store (decision O11).
import type { OneApiHandlers } from '../types.ts';
import * as wire from '../wire.ts';
import { ROLE } from '../../domain/accounts.ts';
import { normalizeArticleUrl, type Articles } from '../../domain/articles.ts';
import { fail, MESSAGES } from '../envelope.ts';
import { parseSendableTime } from '../../../time.ts';

export const ARTICLE_MESSAGES = {
  created: '文章创建成功',
  duplicateUrl: '文章链接已存在',
  notAdmin: '无权进行此操作，权限不足',
} as const;

export function articleHandlers({ articles }: { articles: Articles }) {
  return {
    createArticle: async ({ auth, body }) => {
      if (auth.user.role < ROLE.admin) return fail(403, ARTICLE_MESSAGES.notAdmin);
      const url = normalizeArticleUrl(body.article_url);
      if (!url) return fail(400, MESSAGES.invalidRequest('article_url 格式不正确'));
      const published = body.published_at === undefined ? null : parseSendableTime(body.published_at);
      if (published === undefined) return fail(400, MESSAGES.invalidRequest('published_at 超出范围'));
      const stored = await articles.add({
        title: body.title,
        content: body.content ?? '',
        author: body.author ?? '',
        published_at: published,
        article_url: url,
        source: `admin:${auth.user.id}`,
      });
      if (stored === 'duplicateUrl') return fail(400, ARTICLE_MESSAGES.duplicateUrl);
      return { status: 200, body: { success: true, message: ARTICLE_MESSAGES.created, data: wire.article(stored) } };
    },
  } satisfies Partial<OneApiHandlers>;
}
