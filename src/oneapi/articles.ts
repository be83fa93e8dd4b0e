// The shared article store (decision O11): the only module that reads or writes oneapi_articles.
// Articles come from feeds (feeds.ts) and from admins; a subscription's articles are those whose
// title or content contains its topic name, case-insensitively (see matchKey).
import type { Knex } from 'knex';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import { uniqueViolation } from '../dbErrors.ts';
import type { components } from '../../generated/oneapi.ts';
import { iso } from '../time.ts';
import type { Page } from './paging.ts';

export type Article = components['schemas']['Article'];

export const ARTICLE_LIMITS = { title: 255, content: 20_000, author: 100, url: 500 } as const;

export interface NewArticle {
  title: string;
  content: string;
  author: string;
  /** Epoch ms, or null when unknown. */
  published_at: number | null;
  /** Already normalised by `normalizeArticleUrl`. */
  article_url: string;
  /** Where it came from: a feed (credentials and query left out) or `admin:<user id>`. */
  source: string;
}

interface Row {
  id: number;
  title: string;
  content: string;
  author: string;
  published_at: number | null;
  article_url: string;
}

const TABLE = 'oneapi_articles';
const COLUMNS = ['id', 'title', 'content', 'author', 'published_at', 'article_url'];

/**
 * The form of text that matching compares: the same on SQLite and Postgres, whatever their locale.
 * Lower case, with the Greek final sigma folded into σ: lower-casing writes a word-final Σ as ς, so
 * without it `ΟΔΟΣ` (οδος) would not be found in `ΟΔΟΣΤΡΩΜΑ` (οδοστρωμα).
 */
export function matchKey(text: string): string {
  return text.normalize('NFC').toLowerCase().replaceAll('ς', 'σ');
}

// The check the contract applies to `format: uri`, so every stored URL is one the spec accepts.
const isUri = fullFormats.uri as (s: string) => boolean;

/**
 * The one form an article URL is stored and compared in (http or https, WHATWG-normalised,
 * percent-encoded), or undefined when there is none within the limit.
 */
export function normalizeArticleUrl(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const href = url.href;
  return href.length <= ARTICLE_LIMITS.url && isUri(href) ? href : undefined;
}

function toArticle(row: Row): Article {
  return {
    id: row.id,
    title: row.title,
    content: row.content,
    author: row.author,
    published_at: row.published_at === null ? null : iso(row.published_at),
    article_url: row.article_url,
  };
}

function escapeLike(text: string): string {
  return text.replace(/[!%_]/g, (c) => `!${c}`);
}

export class Articles {
  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  private rowOf(a: NewArticle, now: number) {
    return { ...a, title_key: matchKey(a.title), content_key: matchKey(a.content), created_at: now };
  }

  /** Stores one article (an admin's); `duplicateUrl` when the store has one at that URL. */
  async add(article: NewArticle): Promise<Article | 'duplicateUrl'> {
    try {
      const [row] = await this.db(TABLE).insert(this.rowOf(article, this.now())).returning(COLUMNS);
      return toArticle(row as Row);
    } catch (err) {
      if (uniqueViolation(err) === 'article_url') return 'duplicateUrl';
      throw err;
    }
  }

  /**
   * Stores the articles whose URL the store does not have yet (the first of a URL wins, within the
   * list and against concurrent ingesters) and answers how many were new.
   */
  async addNew(articles: NewArticle[]): Promise<number> {
    const now = this.now();
    let added = 0;
    // Small batches keep each statement under SQLite's bound-parameter limit.
    for (let i = 0; i < articles.length; i += 50) {
      const rows = articles.slice(i, i + 50).map((a) => this.rowOf(a, now));
      const inserted = await this.db(TABLE).insert(rows).onConflict('article_url').ignore().returning('id');
      added += inserted.length;
    }
    return added;
  }

  /** Articles whose title or content contains `topicName` (case-insensitive), newest first. */
  async matching(topicName: string, page: Page): Promise<{ items: Article[]; total: number }> {
    const pattern = `%${escapeLike(matchKey(topicName))}%`;
    const matches = (q: Knex.QueryBuilder) => q.whereRaw(`title_key LIKE ? ESCAPE '!'`, [pattern]).orWhereRaw(`content_key LIKE ? ESCAPE '!'`, [pattern]);
    const [rows, counted] = await Promise.all([
      matches(this.db(TABLE).select(COLUMNS)).orderByRaw('published_at IS NULL, published_at DESC, id DESC').limit(page.size).offset(page.offset),
      matches(this.db(TABLE).count({ total: '*' })),
    ]);
    return { items: (rows as Row[]).map(toArticle), total: Number((counted as { total: number | string }[])[0].total) };
  }
}
