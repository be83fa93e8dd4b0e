// Feed ingestion (decision O11): reads the configured RSS 2.0 / Atom feeds on a schedule, reduces
// their HTML to text and stores articles the store does not have yet (by URL). Each feed is read
// with a time limit and a size limit; a feed that fails is logged and skipped, never stopping the
// server or the other feeds.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from '../logger.ts';
import { ROOT } from '../spec.ts';
import { sendableTime } from '../time.ts';
import { ARTICLE_LIMITS, normalizeArticleUrl, type Articles, type NewArticle } from './articles.ts';

/** The sample feed that ships with the project (ingested outside production, FEED_SAMPLE). */
export const SAMPLE_FEED = pathToFileURL(path.join(ROOT, 'data-samples', 'feeds', 'sample-tech.xml')).href;

/** Larger bodies are refused: no real feed needs more, and the body is held in memory. */
const MAX_FEED_BYTES = 5 * 1024 * 1024;
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

const ACCEPT = 'application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5';

/** What may be logged of a feed's address: no credentials, no query (it can carry a key). */
export function feedLabel(feed: string): string {
  const u = new URL(feed);
  return u.protocol === 'file:' ? fileURLToPath(u) : `${u.origin}${u.pathname}`;
}

/**
 * A percent-encoded part of a URL, decoded; as written when it does not decode (a literal `%` in a
 * password, e.g. `https://reader:100%@host/feed.xml`, is the password's own character).
 */
function decodeOrKeep(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** An error message with the feed's credentials and query taken out (fetch errors can quote the URL). */
function withoutSecrets(message: string, feed: string): string {
  const u = new URL(feed);
  let out = message.split(feed).join(feedLabel(feed));
  for (const secret of [u.search, u.password, decodeOrKeep(u.password)]) if (secret) out = out.split(secret).join('[redacted]');
  return out;
}

// fetch refuses URLs with credentials: `https://user:pass@host/feed` becomes Basic authentication.
function withoutCredentials(url: URL): URL {
  if (!url.username && !url.password) return url;
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  return bare;
}

function basicAuth(url: URL): Record<string, string> {
  if (!url.username && !url.password) return {};
  const pair = `${decodeOrKeep(url.username)}:${decodeOrKeep(url.password)}`;
  return { authorization: `Basic ${Buffer.from(pair).toString('base64')}` };
}

type Parse = typeof import('@rowanmanning/feed-parser').parseFeed;
type ToText = (html: string) => string;

// The parser and html-to-text cost ~120 ms to load: loaded once, on the first run, not at start-up.
let libraries: Promise<{ parse: Parse; toText: ToText }> | undefined;
function loadLibraries() {
  libraries ??= Promise.all([import('@rowanmanning/feed-parser'), import('html-to-text')]).then(([feedParser, htmlToText]) => ({
    parse: feedParser.parseFeed,
    toText: htmlToText.compile({
      wordwrap: false,
      selectors: [
        { selector: 'a', options: { ignoreHref: true } },
        { selector: 'img', format: 'skip' },
        { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
        ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
      ],
    }),
  }));
  return libraries;
}

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
          const message = this.settings.feeds.reduce((text, feed) => withoutSecrets(text, feed), err instanceof Error ? err.message : String(err));
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
      const { parse, toText } = await loadLibraries();
      const parsed = parse(await this.read(feed));
      const articles = parsed.items.map((item) => this.articleOf(item, label, toText)).filter((a): a is NewArticle => a !== undefined);
      const added = await this.articles.addNew(articles);
      this.logger.info({ feed: label, items: parsed.items.length, usable: articles.length, added }, 'feed ingested');
      return { feed: label, items: parsed.items.length, added };
    } catch (err) {
      const error = this.stopping.signal.aborted ? 'stopped' : withoutSecrets(err instanceof Error ? err.message : String(err), feed);
      this.logger.warn({ feed: label, err: error }, 'feed skipped');
      return { feed: label, error };
    }
  }

  private async read(feed: string): Promise<string> {
    // A timer of our own rather than AbortSignal.any([AbortSignal.timeout(...), ...]): on Node 20
    // the timeout signal inside `any` can be garbage-collected, and then the limit never fires.
    const limit = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      limit.abort();
    }, this.settings.timeoutMs);
    const onStop = () => limit.abort();
    this.stopping.signal.addEventListener('abort', onStop);
    // A stop that came while the libraries loaded fired before this listener existed.
    if (this.stopping.signal.aborted) limit.abort();
    let answered = false;
    try {
      const url = new URL(feed);
      if (url.protocol === 'file:') {
        const handle = await fs.open(fileURLToPath(url), 'r');
        try {
          const { size } = await handle.stat();
          if (size > MAX_FEED_BYTES) throw new Error(`feed larger than ${MAX_FEED_BYTES} bytes`);
          return decode(await handle.readFile({ signal: limit.signal }), undefined);
        } finally {
          await handle.close();
        }
      }
      const res = await fetch(withoutCredentials(url), { signal: limit.signal, redirect: 'follow', headers: { accept: ACCEPT, ...basicAuth(url) } });
      answered = true;
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      return decode(await readLimited(res, MAX_FEED_BYTES), res.headers.get('content-type'));
    } catch (err) {
      if (!timedOut) throw err;
      throw new Error(answered ? `feed not read within ${this.settings.timeoutMs} ms` : `no answer within ${this.settings.timeoutMs} ms`);
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener('abort', onStop);
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

async function readLimited(res: Response, maxBytes: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw new Error(`feed larger than ${maxBytes} bytes`);
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new Error(`feed larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The feed as text, in the charset its Content-Type or XML declaration names (Chinese feeds are
 * often GBK or GB18030), UTF-8 otherwise.
 */
function decode(bytes: Buffer, contentType: string | null | undefined): string {
  const declared =
    /charset\s*=\s*"?([\w.:-]+)/i.exec(contentType ?? '')?.[1] ??
    /^(?:\u00EF\u00BB\u00BF)?\s*<\?xml[^>]*\bencoding\s*=\s*["']([\w.:-]+)["']/i.exec(bytes.subarray(0, 200).toString('latin1'))?.[1];
  try {
    return new TextDecoder(declared ?? 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes); // an unknown charset name
  }
}
