// The shared article store (decision O11): which articles it takes and which match a subscription.
// Articles come from feeds (domain/feeds.ts) and from admins; a subscription's articles are those
// whose title or content contains its topic name, case-insensitively (see matchKey). The rows are
// read and written by store/articles.ts.
import { fullFormats } from 'ajv-formats/dist/formats.js';
import type { ArticleFields, ArticleStore } from '../store/articles.ts';
import type { Listed, Slice } from '../store/listing.ts';

export type { ArticleFields };

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

/**
 * The form of text that matching compares: the same on SQLite and Postgres, whatever their locale.
 * Lower case, with the Greek final sigma folded into σ: lower-casing writes a word-final Σ as ς, so
 * without it `ΟΔΟΣ` (οδος) would not be found in `ΟΔΟΣΤΡΩΜΑ` (οδοστρωμα).
 */
export function matchKey(text: string): string {
  return text.normalize('NFC').toLowerCase().replaceAll('ς', 'σ');
}

// The check the contract applies to `format: uri`, so every stored URL is one the spec accepts.
// ajv-formats types a format as a union (string, regexp, object); `uri` is a function.
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

export class Articles {
  constructor(
    private readonly store: ArticleStore,
    private readonly now: () => number = Date.now,
  ) {}

  private rowOf(a: NewArticle, now: number) {
    return { ...a, title_key: matchKey(a.title), content_key: matchKey(a.content), created_at: now };
  }

  /** Stores one article (an admin's); `duplicateUrl` when the store has one at that URL. */
  add(article: NewArticle): Promise<ArticleFields | 'duplicateUrl'> {
    return this.store.insert(this.rowOf(article, this.now()));
  }

  /**
   * Stores the articles whose URL the store does not have yet (the first of a URL wins, within the
   * list and against concurrent ingesters) and answers how many were new.
   */
  addNew(articles: NewArticle[]): Promise<number> {
    const now = this.now();
    return this.store.insertNew(articles.map((a) => this.rowOf(a, now)));
  }

  /** Articles whose title or content contains `topicName` (case-insensitive), newest first. */
  matching(topicName: string, page: Slice): Promise<Listed<ArticleFields>> {
    return this.store.containing(matchKey(topicName), page);
  }
}
