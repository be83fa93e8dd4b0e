// The docs over HTTP (decision G8): the served documents are the YAML plus a servers entry naming
// this server, the pages and their assets come from this server with nothing from outside, and
// `npm run docs` writes a static site that embeds the documents. The browser test
// (docs.browser.test.ts) checks that it all renders and works.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { expect } from 'chai';
import { bodyOf, client, type Client } from './helpers/http.ts';
import { sharedServer, startServer, type TestServer } from './helpers/server.ts';
import { ROOT, loadSpec, type ApiName } from '../src/spec.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { redocPage, type DocumentedApi } from '../src/docs.ts';

const BASES: Record<ApiName, string> = { aideer: '/api/v1', oneapi: '/api' };
const AIDEER_TOKEN_PATH = '/api/v1/session/oauth2/token';

/**
 * The YAML as the server should serve it at `origin`: the servers entry and AIDeer's OAuth2 token
 * URL absolute on it (Swagger UI would resolve a relative token URL against the server URL).
 */
function expectedDocument(name: ApiName, origin: string) {
  const doc = loadSpec(name);
  doc.servers = [{ ...doc.servers![0], url: `${origin}${BASES[name]}` }];
  if (name === 'aideer') tokenFlowOf(doc).tokenUrl = `${origin}${AIDEER_TOKEN_PATH}`;
  return doc;
}

/** What these tests read of a served document: its servers entry (the rest is compared whole). */
interface ServedDocument {
  servers: { url: string }[];
}

/** AIDeer's OAuth2 password flow, in a document as parsed or as served. */
function tokenFlowOf(doc: object): { tokenUrl: string } {
  return (
    doc as { components: { securitySchemes: { OAuth2PasswordBearer: { flows: { password: { tokenUrl: string } } } } } }
  ).components.securitySchemes.OAuth2PasswordBearer.flows.password;
}

/** URLs a browser would load from the markup (src and href attributes). */
function attributeUrls(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]);
}

function expectNothingExternal(html: string, where: string) {
  for (const url of attributeUrls(html)) expect(url, where).to.not.match(/^(?:[a-z][a-z0-9+.-]*:|\/\/)/i);
  expect(html, where).to.not.match(/@import|url\(\s*['"]?(?:https?:)?\/\//i);
}

/** Runs a page's inline Redoc.init call and returns the document it was given. */
function documentEmbeddedIn(html: string): unknown {
  const script = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)]
    .map((m) => m[1])
    .find((s) => s.includes('Redoc.init('));
  let spec: unknown;
  vm.runInNewContext(script!, {
    Redoc: { init: (s: unknown) => (spec = s) },
    document: { getElementById: () => null },
  });
  return spec;
}

async function expectAsset(api: Client, url: string, contentType: RegExp) {
  const res = await api.get(url).buffer(true).expect(200);
  expect(res.headers['content-type'], url).to.match(contentType);
  return res;
}

const CONTENT_TYPES: Record<string, RegExp> = {
  '.css': /^text\/css/,
  '.js': /^(?:text|application)\/javascript/,
  '.png': /^image\/png/,
};

describe('the served OpenAPI documents', () => {
  let server: TestServer;
  let api: Client;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  for (const name of ['aideer', 'oneapi'] as const) {
    it(`when ${BASES[name]}/openapi.json is fetched, then it is openapi/${name}.yaml as JSON with a servers entry naming this server`, async () => {
      const res = await api
        .get(`${BASES[name]}/openapi.json`)
        .expect(200)
        .expect('Content-Type', /^application\/json/);
      expect(res.body).to.deep.equal(expectedDocument(name, server.url));
      expect(res.headers['cache-control']).to.equal('no-cache');
      // Built for the address the request used, which another proxy or name could change.
      expect(res.headers.vary.split(/,\s*/)).to.include.members(['Host', 'X-Forwarded-Host', 'X-Forwarded-Proto']);
    });
  }

  it('when the Host header is an IPv6 address with a port, then the servers entry names it, and the usual address still gets its own', async () => {
    const port = new URL(server.url).port;
    const res = await api.get('/api/v1/openapi.json').set('Host', `[::1]:${port}`).expect(200);
    expect(res.body).to.deep.equal(expectedDocument('aideer', `http://[::1]:${port}`));
    const usual = await api.get('/api/v1/openapi.json').expect(200);
    expect(usual.body).to.deep.equal(expectedDocument('aideer', server.url));
  });

  it('when X-Forwarded-Proto and X-Forwarded-Host come from an untrusted client, then they are ignored', async () => {
    const res = await api
      .get('/api/v1/openapi.json')
      .set({ 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example' })
      .expect(200);
    expect(bodyOf<ServedDocument>(res).servers[0].url).to.equal(`${server.url}/api/v1`);
  });

  it('when the Host header is not a plain host name, then the servers entry and the token URL stay relative', async () => {
    const res = await api.get('/api/openapi.json').set('Host', 'evil.example/phish?').expect(200);
    expect(bodyOf<ServedDocument>(res).servers[0].url).to.equal('/api');
    const aideer = bodyOf<ServedDocument>(
      await api.get('/api/v1/openapi.json').set('Host', 'evil.example/phish?').expect(200),
    );
    expect(aideer.servers[0].url).to.equal('/api/v1');
    expect(tokenFlowOf(aideer).tokenUrl).to.equal(AIDEER_TOKEN_PATH);
  });

  describe('behind a trusted proxy', () => {
    let proxied: TestServer;
    before(async () => {
      proxied = await startServer({ TRUST_PROXY: 'true' });
    });
    after(() => proxied.close());

    it('when the proxy sends X-Forwarded-Proto and X-Forwarded-Host, then the servers entry is the address the client used', async () => {
      const res = await client(proxied.url)
        .get('/api/v1/openapi.json')
        .set({ 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'api.example.com' })
        .expect(200);
      expect(res.body).to.deep.equal(expectedDocument('aideer', 'https://api.example.com'));
      expect(res.headers.vary).to.match(/X-Forwarded-Host/);
    });
  });

  describe('with PUBLIC_BASE_URL', () => {
    let pinned: TestServer;
    before(async () => {
      pinned = await startServer({ PUBLIC_BASE_URL: 'https://gateway.example.com/ai/', TRUST_PROXY: 'true' });
    });
    after(() => pinned.close());

    it('when it is set, then the servers entry is built on it whatever the request says', async () => {
      const res = await client(pinned.url)
        .get('/api/openapi.json')
        .set({ 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'other.example' })
        .expect(200);
      expect(res.body).to.deep.equal(expectedDocument('oneapi', 'https://gateway.example.com/ai'));
      // The same document for every request: nothing to vary on.
      expect(res.headers.vary ?? '').to.not.match(/Host|X-Forwarded/i);
    });

    it("when it carries a path prefix, then AIDeer's OAuth2 token URL is absolute on it, prefix included", async () => {
      const res = await client(pinned.url).get('/api/v1/openapi.json').expect(200);
      expect(tokenFlowOf(bodyOf<ServedDocument>(res)).tokenUrl).to.equal(
        'https://gateway.example.com/ai/api/v1/session/oauth2/token',
      );
      expect(res.body).to.deep.equal(expectedDocument('aideer', 'https://gateway.example.com/ai'));
    });
  });

  it('when PUBLIC_BASE_URL is not an http(s) URL, then loading the settings fails naming it', () => {
    for (const value of ['gateway.example.com', 'ftp://gateway.example.com']) {
      expect(() => loadConfig({ PUBLIC_BASE_URL: value }), value).to.throw(ConfigError, 'PUBLIC_BASE_URL');
    }
  });
});

describe('the docs pages', () => {
  let server: TestServer;
  let api: Client;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  it('when /docs is requested, then it redirects to /docs/, a Swagger UI page offering both documents with every asset from this server', async () => {
    expect((await api.get('/docs').expect(301)).headers.location).to.equal('docs/');
    const res = await api
      .get('/docs/')
      .expect(200)
      .expect('Content-Type', /^text\/html/);
    expectNothingExternal(res.text, '/docs/');
    expect(res.text).to.not.match(/https?:/);
    expect(res.text).to.include('"validatorUrl":null');
    for (const name of ['aideer', 'oneapi'] as const)
      expect(res.text).to.include(`"url":"..${BASES[name]}/openapi.json"`);
    const assets = attributeUrls(res.text);
    expect(assets).to.include.members(['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js']);
    for (const asset of assets) await expectAsset(api, `/docs/${asset}`, CONTENT_TYPES[path.extname(asset)]);
  });

  it('when /redoc is requested, then it redirects to /redoc/, an index linking a Redoc page per API whose assets come from this server', async () => {
    expect((await api.get('/redoc?x=1').expect(301)).headers.location).to.equal('redoc/?x=1');
    const index = await api
      .get('/redoc/')
      .expect(200)
      .expect('Content-Type', /^text\/html/);
    expectNothingExternal(index.text, '/redoc/');
    expect(attributeUrls(index.text)).to.include.members(['aideer', 'oneapi', '../docs/']);
    for (const name of ['aideer', 'oneapi'] as const) {
      const page = await api
        .get(`/redoc/${name}`)
        .expect(200)
        .expect('Content-Type', /^text\/html/);
      expectNothingExternal(page.text, `/redoc/${name}`);
      expect(page.text).to.not.match(/https?:/);
      expect(attributeUrls(page.text)).to.deep.equal(['redoc.standalone.js']);
      expect(documentEmbeddedIn(page.text)).to.equal(`..${BASES[name]}/openapi.json`);
    }
    const bundle = await expectAsset(api, '/redoc/redoc.standalone.js', CONTENT_TYPES['.js']);
    expect(bundle.text).to.include('Redoc').and.not.include('cdn.redoc.ly');
  });

  it('when pages and assets are fetched, then pages are revalidated each time and assets are cached for an hour', async () => {
    for (const url of ['/docs/', '/redoc/', '/redoc/aideer', '/redoc/oneapi']) {
      expect((await api.get(url).expect(200)).headers['cache-control'], url).to.equal('no-cache');
    }
    for (const url of [
      '/docs/swagger-ui.css',
      '/docs/swagger-ui-bundle.js',
      '/docs/favicon-32x32.png',
      '/redoc/redoc.standalone.js',
    ]) {
      expect((await api.get(url).buffer(true).expect(200)).headers['cache-control'], url).to.equal(
        'public, max-age=3600',
      );
    }
  });

  it('when a browser asks for /favicon.ico, then it gets the icon that ships in static/', async () => {
    const res = await api
      .get('/favicon.ico')
      .buffer(true)
      .parse((r, done) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => done(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(res.headers['content-type']).to.equal('image/x-icon');
    const icon = res.body as Buffer;
    // An ICO header (reserved 0, type 1, at least one image) and the file's own bytes.
    expect([icon.readUInt16LE(0), icon.readUInt16LE(2)]).to.deep.equal([0, 1]);
    expect(icon.readUInt16LE(4)).to.be.at.least(1);
    expect(icon.equals(fs.readFileSync(path.join(ROOT, 'static', 'favicon.ico')))).to.equal(true);
  });

  it('when a docs path names nothing, then 404', async () => {
    await api.get('/docs/index.html').expect(404);
    await api.get('/docs/swagger-initializer.js').expect(404);
    await api.get('/redoc/petstore').expect(404);
  });

  describe('with AIDeer switched off', () => {
    let oneApiOnly: TestServer;
    before(async () => {
      oneApiOnly = await startServer({ ENABLE_AIDEER: 'false' });
    });
    after(() => oneApiOnly.close());

    it("when the docs are opened, then they offer One-API only and AIDeer's document is not served", async () => {
      const only = client(oneApiOnly.url);
      const docs = await only.get('/docs/').expect(200);
      expect(docs.text).to.include('"url":"../api/openapi.json"').and.not.include('../api/v1/openapi.json');
      expect(attributeUrls((await only.get('/redoc/').expect(200)).text))
        .to.include('oneapi')
        .and.not.include('aideer');
      await only.get('/redoc/aideer').expect(404);
      await only.get('/api/v1/openapi.json').expect(404);
      await only.get('/api/openapi.json').expect(200);
    });
  });

  describe('with both APIs switched off', () => {
    let neither: TestServer;
    before(async () => {
      neither = await startServer({ ENABLE_AIDEER: 'false', ENABLE_ONEAPI: 'false' });
    });
    after(() => neither.close());

    it('when /docs or /redoc is requested, then 404: there is nothing to document', async () => {
      await client(neither.url).get('/docs/').expect(404);
      await client(neither.url).get('/redoc/').expect(404);
    });
  });
});

describe('the Redoc page', () => {
  it('when the embedded document and the title hold </script> and <!--, then neither ends the script or opens a comment, and the document reads back unchanged', () => {
    const hostile = '</script><script>alert(1)</script><!--';
    const document = {
      openapi: '3.1.0',
      info: { title: hostile, version: '1', description: `line\u2028separators\u2029${hostile}` },
      paths: {},
    };
    const api: DocumentedApi = { name: 'aideer', title: hostile, base: '/api/v1', document };
    const html = redocPage(api, document, 'redoc.standalone.js');
    // Only the page's own two script elements close.
    expect(html.match(/<\/script/gi)).to.have.length(2);
    expect(html).to.not.include('<script>alert').and.not.include('<!--');
    expect(html).to.not.match(/[\u2028\u2029]/);
    expect(documentEmbeddedIn(html)).to.deep.equal(document);
  });
});

describe('npm run docs', () => {
  it('when it runs, then it writes an index and one Redoc page per API embedding its document, with nothing to fetch from outside', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'docs-site-'));
    try {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(ROOT, 'scripts/build-docs.ts'), '--out', out],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (c) => (output += c));
      child.stderr.on('data', (c) => (output += c));
      expect(await new Promise<number | null>((resolve) => child.on('exit', resolve)), output).to.equal(0);
      expect(fs.readdirSync(out).sort()).to.deep.equal([
        'aideer.html',
        'index.html',
        'oneapi.html',
        'redoc.standalone.js',
      ]);

      const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
      expectNothingExternal(index, 'index.html');
      expect(attributeUrls(index)).to.deep.equal(['aideer.html', 'oneapi.html']);
      for (const name of ['aideer', 'oneapi'] as const) {
        const page = fs.readFileSync(path.join(out, `${name}.html`), 'utf8');
        expectNothingExternal(page, `${name}.html`);
        expect(attributeUrls(page)).to.deep.equal(['redoc.standalone.js']);
        expect(documentEmbeddedIn(page)).to.deep.equal(loadSpec(name));
      }
      expect(fs.readFileSync(path.join(out, 'redoc.standalone.js'), 'utf8')).to.not.include('cdn.redoc.ly');
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
