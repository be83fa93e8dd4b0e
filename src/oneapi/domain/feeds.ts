// Feed ingestion (decision O11): reads the configured RSS 2.0 / Atom feeds on a schedule, reduces
// their HTML to text and stores articles the store does not have yet (by URL). Each feed is read
// with a time limit and a size limit (adapters/feeds.ts); a feed that fails is logged and skipped,
// never stopping the server or the other feeds.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../../logger.ts';
import { ROOT } from '../../spec.ts';
import { sendableTime } from '../../time.ts';
import { feedLabel, loadFeedLibraries, readFeed, withoutSecrets, type Parse, type ToText } from '../adapters/feeds.ts';
import { ARTICLE_LIMITS, normalizeArticleUrl, type Articles, type NewArticle } from './articles.ts';

/** The sample feed that ships with the project (ingested outside production, FEED_SAMPLE). */
export const SAMPLE_FEED = pathToFileURL(path.join(ROOT, 'data-samples', 'feeds', 'sample-tech.xml')).href;

/** Lets start-up finish (and the first requests through) before the feed libraries load. */
const FIRST_RUN_DELAY_MS = 2000;

export interface FeedSettings {
  /** `http:`, `https:` or `file:` URLs. */
  feeds: string[];
  refreshSeconds: number;
  timeoutMs: number;
  /** Delay of the first run after `start()`; FIRST_RUN_DELAY_MS unless given. */
  firstRunDelayMs?: number;
}

export type FeedOutcome = { feed: string; items: number; added: number } | { feed: string; error: string };

function clip(text: string, max: number): string {
  return [...text].length <= max ? text : [...text].slice(0, max).join('');
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

export class FeedIngester {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<FeedOutcome[]> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly articles: Articles,
    private readonly settings: FeedSettings,
    private readonly logger: Logger,
  ) {}

  /** Runs every feed shortly after start-up, then every `refreshSeconds`; runs never overlap. */
  start(): void {
    if (this.settings.feeds.length === 0 || this.stopping.signal.aborted) return;
    this.schedule(this.settings.firstRunDelayMs ?? FIRST_RUN_DELAY_MS);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      void this.refresh()
        // refresh() is built not to reject; should it ever, a rejection here would end the process.
        .catch((err: unknown) => {
          const message = this.settings.feeds.reduce(
            (text, feed) => withoutSecrets(text, feed),
            err instanceof Error ? err.message : String(err),
          );
          this.logger.error({ err: message }, 'feed refresh failed');
        })
        .finally(() => {
          if (!this.stopping.signal.aborted) this.schedule(this.settings.refreshSeconds * 1000);
        });
    }, delayMs);
    // The schedule alone never keeps the process alive.
    this.timer.unref();
  }

  /** Reads every feed now, or joins the run in progress; never rejects. */
  refresh(): Promise<FeedOutcome[]> {
    if (this.stopping.signal.aborted) return Promise.resolve([]);
    this.running ??= Promise.all(this.settings.feeds.map((feed) => this.ingest(feed))).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the schedule, aborts reads in progress and waits for the run to end. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.stopping.abort();
    await this.running;
  }

  private async ingest(feed: string): Promise<FeedOutcome> {
    const label = feedLabel(feed);
    try {
      const { parse, toText } = await loadFeedLibraries();
      const parsed = parse(await readFeed(feed, this.settings.timeoutMs, this.stopping.signal));
      const articles = parsed.items
        .map((item) => this.articleOf(item, label, toText))
        .filter((a): a is NewArticle => a !== undefined);
      const added = await this.articles.addNew(articles);
      this.logger.info({ feed: label, items: parsed.items.length, usable: articles.length, added }, 'feed ingested');
      return { feed: label, items: parsed.items.length, added };
    } catch (err) {
      const error = this.stopping.signal.aborted
        ? 'stopped'
        : withoutSecrets(err instanceof Error ? err.message : String(err), feed);
      this.logger.warn({ feed: label, err: error }, 'feed skipped');
      return { feed: label, error };
    }
  }

  private articleOf(item: ReturnType<Parse>['items'][number], source: string, toText: ToText): NewArticle | undefined {
    const url = (item.url && normalizeArticleUrl(item.url)) || (item.id && normalizeArticleUrl(item.id));
    if (!url) return undefined;
    const content = clip(toText(item.content ?? item.description ?? '').trim(), ARTICLE_LIMITS.content);
    const title = clip(oneLine(toText(item.title ?? '')) || oneLine(content), ARTICLE_LIMITS.title);
    if (!title) return undefined;
    const author = item.authors.map((a) => a.name ?? a.email).find(Boolean) ?? '';
    return {
      title,
      content,
      author: clip(oneLine(author), ARTICLE_LIMITS.author),
      published_at: sendableTime((item.published ?? item.updated)?.getTime() ?? NaN) ?? null,
      article_url: url,
      source: clip(source, 500),
    };
  }
}
