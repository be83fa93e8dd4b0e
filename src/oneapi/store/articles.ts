// The shared article store's table (oneapi_articles, decision O11): the only code that reads or
// writes it. What goes in, and how text is matched, is decided in domain/articles.ts.
import type { Knex } from 'knex';
import { uniqueViolation } from '../../dbErrors.ts';
import { counted, type Listed, type Slice } from './listing.ts';
import type { ArticleRow } from './rows.ts';

const TABLE = 'oneapi_articles';
const COLUMNS = ['id', 'title', 'content', 'author', 'published_at', 'article_url'] as const;
/** Rows per insert: keeps each statement under SQLite's bound-parameter limit. */
const BATCH = 50;

export type ArticleFields = Pick<ArticleRow, (typeof COLUMNS)[number]>;
export type NewArticleRow = Omit<ArticleRow, 'id'>;

function escapeLike(text: string): string {
  return text.replace(/[!%_]/g, (c) => `!${c}`);
}

export class ArticleStore {
  constructor(private readonly db: Knex) {}

  /** Inserts the article; `duplicateUrl` when the table has one at its URL. */
  async insert(article: NewArticleRow): Promise<ArticleFields | 'duplicateUrl'> {
    try {
      const [row] = await this.db(TABLE)
        .insert(article)
        .returning([...COLUMNS]);
      return row;
    } catch (err) {
      if (uniqueViolation(err) === 'article_url') return 'duplicateUrl';
      throw err;
    }
  }

  /**
   * Inserts the articles whose URL the table does not have yet (the first of a URL wins, within the
   * list and against concurrent writers) and answers how many were new.
   */
  async insertNew(articles: NewArticleRow[]): Promise<number> {
    let added = 0;
    for (let i = 0; i < articles.length; i += BATCH) {
      const inserted = await this.db(TABLE)
        .insert(articles.slice(i, i + BATCH))
        .onConflict('article_url')
        .ignore()
        .returning('id');
      added += inserted.length;
    }
    return added;
  }

  /** Articles whose title_key or content_key contains `key`, newest first (undated ones last). */
  async containing(key: string, slice: Slice): Promise<Listed<ArticleFields>> {
    const pattern = `%${escapeLike(key)}%`;
    const inTitle = `title_key LIKE ? ESCAPE '!'`;
    const inContent = `content_key LIKE ? ESCAPE '!'`;
    const [rows, total] = await Promise.all([
      this.db(TABLE)
        .whereRaw(inTitle, [pattern])
        .orWhereRaw(inContent, [pattern])
        .select(...COLUMNS)
        .orderByRaw('published_at IS NULL, published_at DESC, id DESC')
        .limit(slice.size)
        .offset(slice.offset),
      this.db(TABLE).whereRaw(inTitle, [pattern]).orWhereRaw(inContent, [pattern]).count({ total: '*' }),
    ]);
    return { rows, total: counted(total) };
  }
}
