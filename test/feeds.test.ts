// Feed ingestion (decision O11) against a feed server on loopback: RSS 2.0 and Atom become
// articles (HTML reduced to text, de-duplicated by URL); malformed, missing, slow, oversized feeds
// are logged and skipped without holding up the others; the schedule stops with the app.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { bodyOf, client, type Client, type Ok } from './helpers/http.ts';
import type { operations } from '../generated/oneapi.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from './helpers/server.ts';
import { API, authHeaders, newSession, type Session } from './helpers/oneapi.ts';
import { FeedIngester, SAMPLE_FEED, type FeedOutcome } from '../src/oneapi/domain/feeds.ts';
import { Articles } from '../src/oneapi/domain/articles.ts';
import { ArticleStore } from '../src/oneapi/store/articles.ts';
import { ConfigError, SETTINGS, loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';

type Subscribed = Ok<operations['createSubscription']>;
type Subscriptions = Ok<operations['listSubscriptions']>;
type ArticlesListed = Ok<operations['listSubscriptionArticles']>;

const WORD = `feedword${crypto.randomBytes(4).toString('hex')}`;
// 技术 in GBK: the feeds below declare that encoding.
const GBK_技术 = Buffer.from([0xbc, 0xbc, 0xca, 0xf5]);
// The ingester's size limit for one feed.
const MAX_FEED_BYTES = 5 * 1024 * 1024;
// Over the 255 characters a title may have (and that oneapi_articles.title holds on Postgres).
const LONG_TITLE = `${WORD} ${'长'.repeat(300)}`;

interface FeedServer {
  base: string;
  hits: Map<string, number>;
  /** Holds every request for /held.xml until released; from then on it answers 500 at once. */
  hold(): { requested: Promise<void>; release(): void };
  close(): Promise<void>;
}

function rss(base: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Loopback RSS</title>
    <link>${base}/</link>
    <item>
      <title>${WORD} 新版本发布 &amp; more</title>
      <link>${base}/posts/a</link>
      <description><![CDATA[<p>Hello <b>${WORD}</b> &amp; friends<script>alert("owned")</script></p><img src="x.png" alt="pic"><p><a href="https://tracker.example/">read more</a></p>]]></description>
      <author>alice@example.com (Alice)</author>
      <pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate>
    </item>
    <item>
      <title>${WORD} the same link again</title>
      <link>${base}/posts/a</link>
      <pubDate>Wed, 03 Jan 2024 10:00:00 GMT</pubDate>
    </item>
    <item>
      <title>Relative link about ${WORD}</title>
      <link>/posts/c</link>
      <dc:creator>Carol</dc:creator>
    </item>
    <item>
      <title>${WORD} from the far future</title>
      <link>${base}/posts/f</link>
      <pubDate>Fri, 01 Jan 12000 00:00:00 GMT</pubDate>
    </item>
    <item>
      <title>No link at all ${WORD}</title>
      <description>nothing to point at</description>
    </item>
    <item>
      <description>&lt;p&gt;Only a description, about ${WORD}.&lt;/p&gt;</description>
      <link>${base}/posts/e</link>
      <pubDate>Sun, 31 Dec 2023 10:00:00 GMT</pubDate>
    </item>
  </channel>
</rss>`;
}

function atom(base: string): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Loopback Atom</title>
  <link href="${base}/"/>
  <id>urn:loopback:atom</id>
  <updated>2024-02-01T00:00:00Z</updated>
  <entry>
    <title type="html">&lt;em&gt;${WORD.toUpperCase()}&lt;/em&gt; in Atom</title>
    <link href="${base}/atom/1"/>
    <id>urn:loopback:atom:1</id>
    <updated>2024-02-01T00:00:00Z</updated>
    <author><name>Ann Atom</name></author>
    <content type="html">&lt;h2&gt;Heading&lt;/h2&gt;&lt;ul&gt;&lt;li&gt;one&lt;/li&gt;&lt;li&gt;two&lt;/li&gt;&lt;/ul&gt;</content>
  </entry>
  <entry>
    <title>Second Atom entry</title>
    <link href="${base}/atom/2"/>
    <id>urn:loopback:atom:2</id>
    <published>2024-01-15T12:00:00+08:00</published>
    <updated>2024-01-20T00:00:00Z</updated>
    <summary>Summary mentioning ${WORD}</summary>
  </entry>
</feed>`;
}

async function startFeedServer(): Promise<FeedServer> {
  const hits = new Map<string, number>();
  let base = '';
  let held: { requested(): void; released: Promise<void> } | undefined;
  const server = http.createServer((req, res) => {
    const route = (req.url ?? '').split('?')[0];
    hits.set(route, (hits.get(route) ?? 0) + 1);
    switch (route) {
      case '/held.xml':
        held?.requested();
        return void (held?.released ?? Promise.resolve()).then(() => res.writeHead(500).end());
      case '/rss.xml':
        return res.writeHead(200, { 'content-type': 'application/rss+xml; charset=utf-8' }).end(rss(base));
      case '/atom.xml':
        return res.writeHead(200, { 'content-type': 'application/atom+xml' }).end(atom(base));
      case '/broken.xml':
        return res
          .writeHead(200, { 'content-type': 'application/rss+xml' })
          .end(`<rss version="2.0"><channel><title>Broken</title><item><title>${WORD} cut off</ti`);
      case '/page.html':
        return res
          .writeHead(200, { 'content-type': 'text/html' })
          .end(`<html><body><p>${WORD} is not a feed</p></body></html>`);
      case '/gbk.xml':
        return res
          .writeHead(200, { 'content-type': 'application/xml' })
          .end(
            Buffer.concat([
              Buffer.from(
                `<?xml version="1.0" encoding="GBK"?><rss version="2.0"><channel><title>GBK</title><link>${base}/</link><item><title>`,
              ),
              GBK_技术,
              Buffer.from(` ${WORD} gbk</title><link>${base}/gbk/1</link></item></channel></rss>`),
            ]),
          );
      case '/huge.xml': {
        // No Content-Length: the limit must hold while streaming.
        res.writeHead(200, { 'content-type': 'application/rss+xml' });
        const chunk = Buffer.alloc(1024 * 1024, ' ');
        for (let i = 0; i < 6; i++) res.write(chunk);
        return res.end('<rss/>');
      }
      case '/slow.xml':
        return; // never answers
      case '/stalled.xml':
        res.writeHead(200, { 'content-type': 'application/rss+xml' });
        return res.write('<rss version="2.0"><channel><title>Stalled</title>'); // and never ends
      case '/private.xml':
        if (req.headers.authorization !== `Basic ${Buffer.from('reader:hunter2pass').toString('base64')}`)
          return res.writeHead(401).end();
        return res
          .writeHead(200, { 'content-type': 'application/rss+xml' })
          .end(
            `<rss version="2.0"><channel><title>P</title><item><title>private</title><link>${base}/private/1</link></item></channel></rss>`,
          );
      case '/private-pct.xml':
        if (req.headers.authorization !== `Basic ${Buffer.from('reader:s3cret100%').toString('base64')}`)
          return res.writeHead(401).end();
        return res
          .writeHead(200, { 'content-type': 'application/rss+xml' })
          .end(
            `<rss version="2.0"><channel><title>P</title><item><title>private</title><link>${base}/private-pct/1</link></item></channel></rss>`,
          );
      case '/gbk-header.xml':
        // No XML declaration: only the Content-Type names the charset.
        return res
          .writeHead(200, { 'content-type': 'application/rss+xml; charset=GBK' })
          .end(
            Buffer.concat([
              Buffer.from(`<rss version="2.0"><channel><title>H</title><item><title>`),
              GBK_技术,
              Buffer.from(` ${WORD} header</title><link>${base}/gbk-header/1</link></item></channel></rss>`),
            ]),
          );
      case '/long-title.xml':
        return res
          .writeHead(200, { 'content-type': 'application/rss+xml' })
          .end(
            `<rss version="2.0"><channel><title>L</title><item><title>${LONG_TITLE}</title><link>${base}/long/1</link></item><item><title>short</title><link>${base}/long/2</link></item></channel></rss>`,
          );
      case '/guid.xml':
        return res
          .writeHead(200, { 'content-type': 'application/rss+xml' })
          .end(
            `<rss version="2.0"><channel><title>G</title><item><title>guid only</title><guid>${base}/guid/1</guid></item></channel></rss>`,
          );
      case '/declared-huge.xml':
        // Announces more than the limit, then stalls: only the announcement can refuse it in time.
        res.writeHead(200, { 'content-type': 'application/rss+xml', 'content-length': String(MAX_FEED_BYTES + 1) });
        return res.write('<rss version="2.0">');
      case '/count.xml':
        return res
          .writeHead(200, { 'content-type': 'application/rss+xml' })
          .end(
            `<rss version="2.0"><channel><title>C</title><item><title>c</title><link>${base}/count/1</link></item></channel></rss>`,
          );
      default:
        return res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    hits,
    hold() {
      let requested!: () => void;
      let release!: () => void;
      const seen = new Promise<void>((r) => (requested = r));
      held = { requested, released: new Promise<void>((r) => (release = r)) };
      return { requested: seen, release };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A logger whose JSON lines the test can read. */
function capturedLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger('info', stream), lines };
}

function outcomeOf(outcomes: FeedOutcome[], feedPath: string): FeedOutcome {
  const found = outcomes.find((o) => o.feed.endsWith(feedPath));
  expect(found, feedPath).to.not.equal(undefined);
  return found!;
}

describe('feed ingestion', () => {
  let feeds: FeedServer;
  before(async () => {
    feeds = await startFeedServer();
  });
  after(() => feeds.close());

  describe('through the app, with FEED_URLS', () => {
    let server: TestServer;
    let api: Client;
    let session: Session;
    let outcomes: FeedOutcome[];
    const missingFile = path.join(os.tmpdir(), `no-such-feed-${crypto.randomBytes(4).toString('hex')}.xml`);

    before(async () => {
      const list = [
        '/rss.xml',
        '/atom.xml',
        '/broken.xml',
        '/page.html',
        '/gone.xml',
        '/slow.xml',
        '/stalled.xml',
        '/huge.xml',
        '/gbk.xml',
      ].map((p) => `${feeds.base}${p}`);
      server = await startServer({
        FEED_URLS: [...list, missingFile].join(','),
        FEED_SAMPLE: 'false',
        FEED_TIMEOUT_SECONDS: '1',
      });
      // At once, long before the scheduled first run: that one then joins this run or follows it,
      // so these outcomes are always the first read of each feed.
      const run = server.app.oneapi!.feeds.refresh();
      api = client(server.url);
      session = await newSession(api);
      outcomes = await run;
    });
    after(() => server.close());

    /** The articles a new subscription of `who` to `topic` lists. */
    const articlesFor = async (topic: string, who: Session = session) => {
      const sub = bodyOf<Subscribed>(
        await api.post(`${API}/subscriptions`).set(authHeaders(who)).send({ topic_name: topic }).expect(200),
      ).data;
      return bodyOf<ArticlesListed>(
        await api.get(`${API}/subscriptions/${sub.id}/articles`).set(authHeaders(who)).query({ size: 100 }).expect(200),
      ).data;
    };

    it('when an RSS 2.0 feed is read, then its items become articles: text only, one per URL, relative links resolved, unusable items skipped', async () => {
      expect(outcomeOf(outcomes, '/rss.xml')).to.deep.equal({ feed: `${feeds.base}/rss.xml`, items: 6, added: 4 });
      const rows = await server
        .db('oneapi_articles')
        .where('article_url', 'like', `${feeds.base}/posts/%`)
        .orderBy('article_url');
      expect(rows.map((r) => r.article_url)).to.deep.equal([
        `${feeds.base}/posts/a`,
        `${feeds.base}/posts/c`,
        `${feeds.base}/posts/e`,
        `${feeds.base}/posts/f`,
      ]);
      const [a, c, e, f] = rows;
      expect(a).to.include({
        title: `${WORD} 新版本发布 & more`,
        author: 'Alice',
        published_at: Date.parse('2024-01-02T10:00:00Z'),
        source: `${feeds.base}/rss.xml`,
      });
      expect(a.content).to.equal(`Hello ${WORD} & friends\n\nread more`);
      expect(c).to.include({ title: `Relative link about ${WORD}`, author: 'Carol', published_at: null, content: '' });
      expect(e).to.include({
        title: `Only a description, about ${WORD}.`,
        content: `Only a description, about ${WORD}.`,
      });
      expect(f).to.include({ published_at: null }); // year 12000 has no RFC 3339 form
    });

    it('when an Atom feed is read, then its entries become articles, HTML titles and content reduced to text', async () => {
      expect(outcomeOf(outcomes, '/atom.xml')).to.deep.equal({ feed: `${feeds.base}/atom.xml`, items: 2, added: 2 });
      const first = await server.db('oneapi_articles').where('article_url', `${feeds.base}/atom/1`).first();
      expect(first).to.include({
        title: `${WORD.toUpperCase()} in Atom`,
        content: 'Heading\n\n * one\n * two',
        author: 'Ann Atom',
        published_at: Date.parse('2024-02-01T00:00:00Z'),
      });
      const second = await server.db('oneapi_articles').where('article_url', `${feeds.base}/atom/2`).first();
      expect(second).to.include({
        content: `Summary mentioning ${WORD}`,
        author: '',
        published_at: Date.parse('2024-01-15T04:00:00Z'),
      });
    });

    it('when a subscription matches ingested articles, then it lists them newest first, whatever feed they came from', async () => {
      const data = await articlesFor(WORD);
      const urls = data.articles.map((a: { article_url: string }) => a.article_url.replace(feeds.base, ''));
      expect(urls.slice(0, 4)).to.deep.equal(['/atom/1', '/atom/2', '/posts/a', '/posts/e']);
      // Undated ones come last, the most recently stored first; the two feeds ran side by side.
      expect(urls.slice(4)).to.have.members(['/posts/c', '/posts/f', '/gbk/1']);
      for (const article of data.articles)
        expect(`${article.title}\n${article.content}`).to.not.match(/<[a-z/]|alert\(/i);
    });

    it('when a feed declares another charset (GBK), then its text is decoded with it', async () => {
      const data = await articlesFor(`技术 ${WORD} gbk`);
      expect(data.articles.map((a: { title: string }) => a.title)).to.deep.equal([`技术 ${WORD} gbk`]);
    });

    it('when feeds are malformed, not feeds, missing, too slow, stalled or too large, then each is reported and skipped', () => {
      const errors = Object.fromEntries(
        outcomes
          .filter((o) => 'error' in o)
          .map((o) => [o.feed.replace(feeds.base, ''), (o as { error: string }).error]),
      );
      expect(Object.keys(errors).sort()).to.deep.equal(
        ['/broken.xml', '/gone.xml', '/huge.xml', '/page.html', '/slow.xml', '/stalled.xml', missingFile].sort(),
      );
      expect(errors['/gone.xml']).to.equal('HTTP 404');
      expect(errors['/slow.xml']).to.equal('no answer within 1000 ms');
      expect(errors['/stalled.xml']).to.equal('feed not read within 1000 ms');
      expect(errors['/huge.xml']).to.match(/larger than/);
      expect(errors['/page.html']).to.match(/could not be parsed as a feed/);
      expect(errors[missingFile]).to.match(/ENOENT/);
      expect(errors['/broken.xml']).to.be.a('string');
    });

    it('when one feed hangs, then the run still ends, with an outcome for every feed', () => {
      expect(outcomes.map((o) => o.feed.replace(feeds.base, ''))).to.have.members([
        '/rss.xml',
        '/atom.xml',
        '/broken.xml',
        '/page.html',
        '/gone.xml',
        '/slow.xml',
        '/stalled.xml',
        '/huge.xml',
        '/gbk.xml',
        missingFile,
      ]);
    });

    it('when the feeds are read again, then nothing is stored twice', async () => {
      // Each look comes from a new reader: one reader cannot subscribe to the same word twice.
      const listed = async () => articlesFor(WORD, await newSession(api));
      const before = await listed();
      const again = await server.app.oneapi!.feeds.refresh();
      expect(outcomeOf(again, '/rss.xml')).to.include({ added: 0 });
      expect(outcomeOf(again, '/atom.xml')).to.include({ added: 0 });
      expect(await listed()).to.deep.equal(before);
    });

    it('when feeds fail, then the API keeps answering, while the run waits on a feed and after it failed', async () => {
      const held = feeds.hold();
      // A time limit far beyond the test: only the release ends the held feed's read.
      const own = await startServer({
        FEED_URLS: [`${feeds.base}/held.xml`, `${feeds.base}/rss.xml`, `${feeds.base}/broken.xml`].join(','),
        FEED_SAMPLE: 'false',
        FEED_TIMEOUT_SECONDS: '300',
      });
      try {
        const ownApi = client(own.url);
        const reader = await newSession(ownApi);
        const run = own.app.oneapi!.feeds.refresh();
        await held.requested;
        // The run now waits on the held feed: reads and writes are answered all the same.
        const sub = bodyOf<Subscribed>(
          await ownApi.post(`${API}/subscriptions`).set(authHeaders(reader)).send({ topic_name: WORD }).expect(200),
        ).data;
        expect(
          bodyOf<Subscriptions>(await ownApi.get(`${API}/subscriptions`).set(authHeaders(reader)).expect(200)).data
            .subscriptions,
        ).to.deep.equal([sub]);
        held.release();
        const ended = await run;
        expect(outcomeOf(ended, '/held.xml')).to.deep.equal({ feed: `${feeds.base}/held.xml`, error: 'HTTP 500' });
        expect(outcomeOf(ended, '/broken.xml')).to.have.property('error');
        // After the failures the server still answers, with what the feed that worked brought.
        const articles = bodyOf<ArticlesListed>(
          await ownApi
            .get(`${API}/subscriptions/${sub.id}/articles`)
            .set(authHeaders(reader))
            .query({ size: 100 })
            .expect(200),
        ).data.articles;
        expect(articles.map((a: { article_url: string }) => a.article_url).sort()).to.deep.equal(
          ['a', 'c', 'e', 'f'].map((p) => `${feeds.base}/posts/${p}`),
        );
      } finally {
        held.release();
        await own.close();
      }
    });
  });

  describe('the sample feed', () => {
    it('when a fresh development server starts, then a subscription to 技术 shows the sample articles', async () => {
      const server = await startServer({ NODE_ENV: 'development' });
      try {
        const outcomes = await server.app.oneapi!.feeds.refresh();
        expect(outcomes).to.deep.equal([{ feed: fileURLToPath(SAMPLE_FEED), items: 12, added: 12 }]);
        const api = client(server.url);
        const session = await newSession(api);
        const sub = bodyOf<Subscribed>(
          await api.post(`${API}/subscriptions`).set(authHeaders(session)).send({ topic_name: '技术' }).expect(200),
        ).data;
        const data = bodyOf<ArticlesListed>(
          await api.get(`${API}/subscriptions/${sub.id}/articles`).set(authHeaders(session)).expect(200),
        ).data;
        expect(data.total).to.be.within(5, 12);
        for (const a of data.articles) {
          expect(`${a.title}${a.content}`).to.include('技术');
          expect(a.article_url).to.match(/^https:\/\/tech\.example\.com\//);
          expect(a.content).to.not.match(/<[a-z/]/i);
        }
        const times = data.articles.map((a) => (a.published_at === null ? NaN : Date.parse(a.published_at)));
        expect(times).to.deep.equal([...times].sort((x, y) => y - x));
      } finally {
        await server.close();
      }
    });

    it('when NODE_ENV is production, then the sample is off unless FEED_SAMPLE says otherwise', () => {
      expect(SETTINGS.feedSample.parse(undefined, { NODE_ENV: 'production' })).to.equal(false);
      expect(SETTINGS.feedSample.parse('true', { NODE_ENV: 'production' })).to.equal(true);
      expect(SETTINGS.feedSample.parse(undefined, { NODE_ENV: 'test' })).to.equal(true);
      expect(SETTINGS.feedSample.parse('off', {})).to.equal(false);
    });
  });

  describe('the ingester on its own', () => {
    let database: TestDatabase;
    before(async () => {
      database = await createTestDatabase();
    });
    after(() => database.drop());

    it('when started, then it reads the feeds again every interval, and stopping it ends the schedule', async () => {
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/count.xml`], refreshSeconds: 0.1, timeoutMs: 1000, firstRunDelayMs: 0 },
        logger,
      );
      const before = feeds.hits.get('/count.xml') ?? 0;
      ingester.start();
      const deadline = Date.now() + 5000;
      while ((feeds.hits.get('/count.xml') ?? 0) < before + 3 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      await ingester.stop();
      const afterStop = feeds.hits.get('/count.xml') ?? 0;
      expect(afterStop).to.be.at.least(before + 3);
      await new Promise((r) => setTimeout(r, 350));
      expect(feeds.hits.get('/count.xml') ?? 0).to.equal(afterStop);
      expect(await ingester.refresh()).to.deep.equal([]);
    });

    // The feed's own time limit is far beyond the test's: only the stop can end these reads.
    it('when stopped while a feed is being read, then the read is abandoned at once', async () => {
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/slow.xml`], refreshSeconds: 3600, timeoutMs: 3_600_000 },
        logger,
      );
      const asked = feeds.hits.get('/slow.xml') ?? 0;
      const run = ingester.refresh();
      while ((feeds.hits.get('/slow.xml') ?? 0) === asked) await new Promise((r) => setTimeout(r, 10));
      await ingester.stop();
      expect(await run).to.deep.equal([{ feed: `${feeds.base}/slow.xml`, error: 'stopped' }]);
    });

    it('when stopped before a started run reaches its first read, then that read is abandoned too', async () => {
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/slow.xml`], refreshSeconds: 3600, timeoutMs: 3_600_000 },
        logger,
      );
      const run = ingester.refresh();
      await ingester.stop();
      expect(await run).to.deep.equal([{ feed: `${feeds.base}/slow.xml`, error: 'stopped' }]);
    });

    it('when garbage is collected while a feed hangs, then its time limit still fires', async () => {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/slow.xml`], refreshSeconds: 3600, timeoutMs: 300 },
        logger,
      );
      let outcome: FeedOutcome[] | undefined;
      const run = ingester.refresh().then((o) => (outcome = o));
      for (let i = 0; i < 40 && !outcome; i++) {
        await new Promise((r) => setTimeout(r, 50));
        gc();
      }
      await ingester.stop();
      await run;
      expect(outcome).to.deep.equal([{ feed: `${feeds.base}/slow.xml`, error: 'no answer within 300 ms' }]);
    });

    it('when a feed address holds credentials or a query, then they are used (Basic authentication) but never logged', async () => {
      const { logger, lines } = capturedLogger();
      const withCredentials = (p: string) => `${feeds.base.replace('http://', 'http://reader:hunter2pass@')}${p}`;
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        {
          feeds: [
            withCredentials('/private.xml?key=s3cr3tkey'),
            withCredentials('/gone.xml?key=s3cr3tkey'),
            `${feeds.base}/broken.xml?token=t0kenvalue`,
          ],
          refreshSeconds: 3600,
          timeoutMs: 1000,
        },
        logger,
      );
      const outcomes = await ingester.refresh();
      await ingester.stop();
      expect(outcomes[0]).to.deep.equal({ feed: `${feeds.base}/private.xml`, items: 1, added: 1 });
      const log = lines.join('');
      expect(log).to.include('/gone.xml').and.include('feed skipped').and.include('feed ingested');
      for (const secret of ['hunter2pass', 's3cr3tkey', 't0kenvalue']) {
        expect(log).to.not.include(secret);
        expect(JSON.stringify(outcomes)).to.not.include(secret);
      }
    });

    it('when a feed password holds a literal %, then the feed is read with the password as written, a failure is reported, and it is never logged', async () => {
      const { logger, lines } = capturedLogger();
      const withPercent = (p: string) => `${feeds.base.replace('http://', 'http://reader:s3cret100%@')}${p}`;
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [withPercent('/private-pct.xml'), withPercent('/gone.xml')], refreshSeconds: 3600, timeoutMs: 1000 },
        logger,
      );
      const outcomes = await ingester.refresh();
      await ingester.stop();
      expect(outcomes).to.deep.equal([
        { feed: `${feeds.base}/private-pct.xml`, items: 1, added: 1 },
        { feed: `${feeds.base}/gone.xml`, error: 'HTTP 404' },
      ]);
      expect(lines.join('')).to.not.include('s3cret100');
    });

    it('when a feed password holds a literal % and the feeds are read on the schedule, then the runs go on', async () => {
      const { logger, lines } = capturedLogger();
      const feed = `${feeds.base.replace('http://', 'http://reader:s3cret100%@')}/gone.xml?run=${crypto.randomBytes(4).toString('hex')}`;
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [feed], refreshSeconds: 0.1, timeoutMs: 1000, firstRunDelayMs: 0 },
        logger,
      );
      const skipped = () => lines.filter((l) => l.includes('feed skipped')).length;
      ingester.start();
      const deadline = Date.now() + 5000;
      while (skipped() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await ingester.stop();
      expect(skipped()).to.be.at.least(2);
      expect(lines.join('')).to.not.include('s3cret100').and.not.include('feed refresh failed');
    });

    it('when the Content-Type names the charset and the XML does not, then the text is decoded with it', async () => {
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/gbk-header.xml`], refreshSeconds: 3600, timeoutMs: 1000 },
        logger,
      );
      expect(await ingester.refresh()).to.deep.equal([{ feed: `${feeds.base}/gbk-header.xml`, items: 1, added: 1 }]);
      expect(
        await database.db('oneapi_articles').where('article_url', `${feeds.base}/gbk-header/1`).first(),
      ).to.include({ title: `技术 ${WORD} header` });
    });

    it("when an item's title is longer than 255 characters, then it is cut to 255 and the other items of the batch are stored too", async () => {
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/long-title.xml`], refreshSeconds: 3600, timeoutMs: 1000 },
        logger,
      );
      expect(await ingester.refresh()).to.deep.equal([{ feed: `${feeds.base}/long-title.xml`, items: 2, added: 2 }]);
      const rows = await database
        .db('oneapi_articles')
        .whereIn('article_url', [`${feeds.base}/long/1`, `${feeds.base}/long/2`])
        .orderBy('article_url');
      expect(rows.map((r) => r.title)).to.deep.equal([[...LONG_TITLE].slice(0, 255).join(''), 'short']);
    });

    it('when an item has no link, then its id is its URL if it is one', async () => {
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/guid.xml`], refreshSeconds: 3600, timeoutMs: 1000 },
        logger,
      );
      expect(await ingester.refresh()).to.deep.equal([{ feed: `${feeds.base}/guid.xml`, items: 1, added: 1 }]);
      expect(await database.db('oneapi_articles').where('article_url', `${feeds.base}/guid/1`).first()).to.include({
        title: 'guid only',
      });
    });

    it('when a response announces a body over the size limit, then it is refused at once, without waiting for the body', async () => {
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [`${feeds.base}/declared-huge.xml`], refreshSeconds: 3600, timeoutMs: 5000 },
        logger,
      );
      const started = Date.now();
      expect(await ingester.refresh()).to.deep.equal([
        { feed: `${feeds.base}/declared-huge.xml`, error: `feed larger than ${MAX_FEED_BYTES} bytes` },
      ]);
      expect(Date.now() - started).to.be.below(2000);
    });

    it('when a local feed file is over the size limit, then it is refused', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feed-file-'));
      const file = path.join(dir, 'big.xml');
      const feed = `<rss version="2.0"><channel><title>B</title><item><title>big</title><link>https://big.example.com/${crypto.randomBytes(4).toString('hex')}</link></item></channel></rss>`;
      fs.writeFileSync(file, feed.padEnd(MAX_FEED_BYTES + 1, ' '));
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [pathToFileURL(file).href], refreshSeconds: 3600, timeoutMs: 5000 },
        logger,
      );
      expect(await ingester.refresh()).to.deep.equal([
        { feed: file, error: `feed larger than ${MAX_FEED_BYTES} bytes` },
      ]);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('when the feed is a local file, then it is read like a remote one', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feed-file-'));
      const file = path.join(dir, 'local.xml');
      const word = `localword${crypto.randomBytes(4).toString('hex')}`;
      fs.writeFileSync(
        file,
        `<rss version="2.0"><channel><title>L</title><item><title>${word}</title><link>https://local.example.com/${word}</link></item></channel></rss>`,
      );
      const { logger } = capturedLogger();
      const ingester = new FeedIngester(
        new Articles(new ArticleStore(database.db)),
        { feeds: [pathToFileURL(file).href], refreshSeconds: 3600, timeoutMs: 1000 },
        logger,
      );
      expect(await ingester.refresh()).to.deep.equal([{ feed: file, items: 1, added: 1 }]);
      await ingester.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  describe('settings', () => {
    it('when FEED_URLS lists URLs and paths, then paths become file URLs and URLs are kept', () => {
      const c = loadConfig({
        FEED_URLS: ' https://feeds.example.com/rss?x=1 , ./feeds/local.xml,,file:///srv/feed.xml ',
      });
      expect(c.feedUrls).to.deep.equal([
        'https://feeds.example.com/rss?x=1',
        pathToFileURL(path.resolve('./feeds/local.xml')).href,
        'file:///srv/feed.xml',
      ]);
      expect(loadConfig({}).feedUrls).to.deep.equal([]);
      expect(loadConfig({})).to.include({ feedRefreshSeconds: 1800, feedTimeoutSeconds: 10 });
    });

    for (const [env, variable] of [
      [{ FEED_URLS: 'ftp://feeds.example.com/rss' }, 'FEED_URLS'],
      [{ FEED_URLS: 'https://ok.example.com/rss,http://' }, 'FEED_URLS'],
      [{ FEED_REFRESH_SECONDS: '5' }, 'FEED_REFRESH_SECONDS'],
      [{ FEED_TIMEOUT_SECONDS: '0' }, 'FEED_TIMEOUT_SECONDS'],
      [{ FEED_SAMPLE: 'sometimes' }, 'FEED_SAMPLE'],
    ] as const) {
      it(`when ${JSON.stringify(env)}, then loading the settings fails naming ${variable}`, () => {
        expect(() => loadConfig(env)).to.throw(ConfigError, variable);
      });
    }

    it('when a FEED_URLS entry is invalid, then the message does not repeat it (it may hold credentials)', () => {
      expect(() => loadConfig({ FEED_URLS: 'http://user:hunter2pass@' }))
        .to.throw(ConfigError)
        .with.property('message')
        .that.does.not.include('hunter2pass');
    });
  });
});
