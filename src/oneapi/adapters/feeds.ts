// Reading feeds from the outside world (decision O11): fetching or opening a feed with a time and
// size limit, in the charset it declares, and the parser and HTML-to-text libraries that turn it
// into items. What becomes an article is decided in domain/feeds.ts.
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** Larger bodies are refused: no real feed needs more, and the body is held in memory. */
const MAX_FEED_BYTES = 5 * 1024 * 1024;

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
export function withoutSecrets(message: string, feed: string): string {
  const u = new URL(feed);
  let out = message.split(feed).join(feedLabel(feed));
  for (const secret of [u.search, u.password, decodeOrKeep(u.password)])
    if (secret) out = out.split(secret).join('[redacted]');
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

export type Parse = typeof import('@rowanmanning/feed-parser').parseFeed;
export type ToText = (html: string) => string;

// The parser and html-to-text cost ~120 ms to load: loaded once, on the first run, not at start-up.
let libraries: Promise<{ parse: Parse; toText: ToText }> | undefined;
export function loadFeedLibraries() {
  libraries ??= Promise.all([import('@rowanmanning/feed-parser'), import('html-to-text')]).then(
    ([feedParser, htmlToText]) => ({
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
    }),
  );
  return libraries;
}

/**
 * The feed's text, read within `timeoutMs` and MAX_FEED_BYTES; given up when `stopping` aborts.
 * `http:`/`https:` feeds are fetched (credentials in the URL become Basic authentication),
 * `file:` ones read from disk.
 */
export async function readFeed(feed: string, timeoutMs: number, stopping: AbortSignal): Promise<string> {
  // A timer of our own rather than AbortSignal.any([AbortSignal.timeout(...), ...]): on Node 20
  // the timeout signal inside `any` can be garbage-collected, and then the limit never fires.
  const limit = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    limit.abort();
  }, timeoutMs);
  const onStop = () => limit.abort();
  stopping.addEventListener('abort', onStop);
  // A stop that came while the libraries loaded fired before this listener existed.
  if (stopping.aborted) limit.abort();
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
    const res = await fetch(withoutCredentials(url), {
      signal: limit.signal,
      redirect: 'follow',
      headers: { accept: ACCEPT, ...basicAuth(url) },
    });
    answered = true;
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    return decode(await readLimited(res, MAX_FEED_BYTES), res.headers.get('content-type'));
  } catch (err) {
    if (!timedOut) throw err;
    throw new Error(answered ? `feed not read within ${timeoutMs} ms` : `no answer within ${timeoutMs} ms`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    stopping.removeEventListener('abort', onStop);
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
  // Node types fetch's body as a stream of `any`; its chunks are bytes.
  for await (const chunk of res.body) {
    if (!(chunk instanceof Uint8Array)) throw new Error('feed body is not bytes');
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
    /^(?:\u00EF\u00BB\u00BF)?\s*<\?xml[^>]*\bencoding\s*=\s*["']([\w.:-]+)["']/i.exec(
      bytes.subarray(0, 200).toString('latin1'),
    )?.[1];
  try {
    return new TextDecoder(declared ?? 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes); // an unknown charset name
  }
}
