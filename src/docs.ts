// The documentation readers open in a browser (decision G8): Swagger UI at /docs, Redoc at /redoc,
// and each contract served as JSON with a `servers` entry naming this server. Every asset comes
// from an installed package, so the pages render with no internet. The static site built by
// `npm run docs` uses the same Redoc page.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import express, { type Request, type Response, type Router } from 'express';
import type { Document } from 'openapi-backend';
import type { Config } from './config.ts';
import { loadSpec, ROOT, type ApiName } from './spec.ts';
import { requestOrigin } from './http/origin.ts';

const require = createRequire(import.meta.url);
const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const REDOC_BUNDLE_FILE = require.resolve('redoc/bundles/redoc.standalone.js');

/** The Swagger UI files the /docs page loads; nothing else of the package is served. */
const SWAGGER_UI_ASSETS = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
];

// Redoc's sidebar shows a logo fetched from Redocly's CDN. An undecodable data: URL makes the image
// fail at once, without a request, and Redoc then drops it (its onError handler), as it would offline.
const REDOC_CDN_LOGOS = /https:\/\/cdn\.redoc\.ly\/redoc\/logo-mini(?:-full)?\.svg/g;

let redocBundle: Buffer | undefined;

/** The installed Redoc standalone bundle, made to fetch nothing from the internet. */
function offlineRedocBundle(): Buffer {
  redocBundle ??= Buffer.from(fs.readFileSync(REDOC_BUNDLE_FILE, 'utf8').replace(REDOC_CDN_LOGOS, 'data:,'));
  return redocBundle;
}

export interface DocumentedApi {
  name: ApiName;
  title: string;
  /** Where the API is mounted: the spec's relative `servers` entry (`/api/v1`, `/api`). */
  base: string;
  /** The hand-written document, as parsed from YAML. */
  document: Document;
}

function documentedApis(names: readonly ApiName[] = ['aideer', 'oneapi']): DocumentedApi[] {
  return names.map((name) => {
    const document = loadSpec(name);
    const base = document.servers?.[0]?.url;
    if (!base?.startsWith('/'))
      throw new Error(`openapi/${name}.yaml: servers[0].url must be the API's relative mount path`);
    return { name, title: document.info.title, base, document };
  });
}

/** JSON that can sit inside an inline <script> (no `</script>`, no `<!--`). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function htmlPage(title: string, head: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
${head}
</head>
<body>
${body}
</body>
</html>
`;
}

/** A page listing the API references, linking each to `href(api)`. */
function indexPage(apis: DocumentedApi[], href: (api: DocumentedApi) => string, extra = ''): string {
  const items = apis
    .map(
      (api) =>
        `<li><a href="${escapeHtml(href(api))}">${escapeHtml(api.title)}</a> <code>${escapeHtml(api.base)}</code> version ${escapeHtml(api.document.info.version)}</li>`,
    )
    .join('\n');
  const style =
    '<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .3em}</style>';
  return htmlPage('API reference', style, `<h1>API reference</h1>\n<ul>\n${items}\n</ul>\n${extra}`);
}

const REDOC_OPTIONS = { expandResponses: '200,201', requiredPropsFirst: true, pathInMiddlePanel: true };

/**
 * A Redoc page for one API. `spec` is the document's URL (fetched by the page) or the document
 * itself (embedded, for pages opened from disk); `bundleSrc` is where the Redoc bundle is.
 */
export function redocPage(api: DocumentedApi, spec: string | object, bundleSrc: string): string {
  const head = '<style>body{margin:0;padding:0}</style>';
  const body = `<div id="redoc"></div>
<script src="${escapeHtml(bundleSrc)}"></script>
<script>Redoc.init(${scriptJson(spec)}, ${scriptJson(REDOC_OPTIONS)}, document.getElementById('redoc'));</script>`;
  return htmlPage(`${api.title} · reference`, head, body);
}

/** Swagger UI for every API, with a selector; `specUrl` is relative to the page. */
function swaggerPage(apis: DocumentedApi[], specUrl: (api: DocumentedApi) => string): string {
  const config = {
    urls: apis.map((api) => ({ url: specUrl(api), name: `${api.title} (${api.base})` })),
    dom_id: '#swagger-ui',
    deepLinking: true,
    displayRequestDuration: true,
    // Swagger UI would otherwise send each document to validator.swagger.io for a badge.
    validatorUrl: null,
  };
  const head = `<link rel="stylesheet" href="swagger-ui.css">
<link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="favicon-16x16.png" sizes="16x16">
<style>body{margin:0}</style>`;
  const body = `<div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script src="swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle(Object.assign(${scriptJson(config)}, {
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: 'StandaloneLayout'
}));
</script>`;
  return htmlPage('API docs · Swagger UI', head, body);
}

const OAUTH2_URLS = new Set(['authorizationUrl', 'tokenUrl', 'refreshUrl']);

/**
 * The document as served at `origin` (PUBLIC_BASE_URL, path prefix included, or the request's
 * own): its server, and the OAuth2 endpoints Swagger UI posts to, made absolute. Swagger UI
 * resolves a relative `tokenUrl` against the server's URL, where `/api/v1/...` would lose a path
 * prefix. With no origin known, both stay relative (to the page's host).
 */
function documentAt(api: DocumentedApi, origin: string | undefined): object {
  const { document } = api;
  const servers = [{ ...document.servers?.[0], url: `${origin ?? ''}${api.base}` }];
  const schemes = document.components?.securitySchemes;
  if (origin === undefined || !schemes) return { ...document, servers };
  const absolute = (flow: object) =>
    Object.fromEntries(
      Object.entries(flow).map(([key, value]) => [
        key,
        OAUTH2_URLS.has(key) && typeof value === 'string' && value.startsWith('/') ? `${origin}${value}` : value,
      ]),
    );
  const securitySchemes = Object.fromEntries(
    Object.entries(schemes).map(([name, scheme]) => [
      name,
      'flows' in scheme
        ? {
            ...scheme,
            flows: Object.fromEntries(Object.entries(scheme.flows).map(([kind, flow]) => [kind, absolute(flow)])),
          }
        : scheme,
    ]),
  );
  return { ...document, servers, components: { ...document.components, securitySchemes } };
}

// Origins are few (PUBLIC_BASE_URL, or the names a server is reached by); the bound keeps a client
// that sends many Host headers from growing the cache.
const CACHED_ORIGINS = 16;

/** One API's served JSON, built once per origin and kept, most recently used last. */
class ServedDocument {
  private readonly byOrigin = new Map<string | undefined, Buffer>();

  constructor(private readonly api: DocumentedApi) {}

  json(origin: string | undefined): Buffer {
    let json = this.byOrigin.get(origin);
    if (json) {
      this.byOrigin.delete(origin); // set again below, as the most recent
    } else {
      json = Buffer.from(JSON.stringify(documentAt(this.api, origin)));
      if (this.byOrigin.size >= CACHED_ORIGINS) this.byOrigin.delete(this.byOrigin.keys().next().value);
    }
    this.byOrigin.set(origin, json);
    return json;
  }
}

/** Redirects `/docs` to `/docs/` (relative, so it holds behind a path-prefixing proxy too). */
function withTrailingSlash(page: (req: Request, res: Response) => void) {
  return (req: Request, res: Response) => {
    const [pathname, query] = req.originalUrl.split(/\?(.*)/s, 2);
    if (pathname.endsWith('/')) return page(req, res);
    res.redirect(301, `${path.posix.basename(pathname)}/${query ? `?${query}` : ''}`);
  };
}

/**
 * The Content-Security-Policy of one docs page: its own inline scripts by hash, everything else
 * from this server (and calls to `apiOrigin`, where "Try it out" goes when PUBLIC_BASE_URL is set).
 */
export function pagePolicy(html: string, apiOrigin: string | undefined): string {
  const hashes = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${crypto.createHash('sha256').update(m[1]).digest('base64')}'`,
  );
  return [
    "default-src 'none'",
    ["script-src 'self'", ...hashes].join(' '),
    // Redoc and Swagger UI add style elements and attributes from script.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    ["connect-src 'self'", ...(apiOrigin ? [apiOrigin] : [])].join(' '),
    // Redoc's search index runs in a worker made from a blob.
    "worker-src 'self' blob:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

function sendHtml(html: string, apiOrigin: string | undefined) {
  const body = Buffer.from(html);
  const policy = pagePolicy(html, apiOrigin);
  return (_req: Request, res: Response) => {
    res.type('html').set({ 'Cache-Control': 'no-cache', 'Content-Security-Policy': policy }).send(body);
  };
}

/** /docs, /redoc and the served documents of the enabled APIs; undefined when both are off. */
export function createDocs(
  config: Pick<Config, 'enableAideer' | 'enableOneapi' | 'publicBaseUrl'>,
): Router | undefined {
  const names = (['aideer', 'oneapi'] as const).filter((name) =>
    name === 'aideer' ? config.enableAideer : config.enableOneapi,
  );
  if (names.length === 0) return undefined;
  const apis = documentedApis(names);
  const router = express.Router({ strict: true });

  // The documents first: /api/openapi.json would otherwise reach One-API's router as an unknown route.
  for (const api of apis) {
    const served = new ServedDocument(api);
    router.get(`${api.base}/openapi.json`, (req, res) => {
      if (!config.publicBaseUrl) res.vary('Host').vary('X-Forwarded-Host').vary('X-Forwarded-Proto');
      res
        .type('json')
        .set('Cache-Control', 'no-cache')
        .send(served.json(requestOrigin(req, config.publicBaseUrl)));
    });
  }

  // Pages refer to their assets and documents relatively, from /docs/ and /redoc/.
  const specFromPage = (api: DocumentedApi) => `..${api.base}/openapi.json`;
  const apiOrigin = config.publicBaseUrl && new URL(config.publicBaseUrl).origin;
  router.get(['/docs', '/docs/'], withTrailingSlash(sendHtml(swaggerPage(apis, specFromPage), apiOrigin)));
  for (const file of SWAGGER_UI_ASSETS) {
    router.get(`/docs/${file}`, (_req, res) => res.sendFile(path.join(SWAGGER_UI_DIR, file), { maxAge: '1h' }));
  }

  const swaggerLink = '<p>Try the operations in <a href="../docs/">Swagger UI</a>.</p>';
  router.get(
    ['/redoc', '/redoc/'],
    withTrailingSlash(
      sendHtml(
        indexPage(apis, (api) => api.name, swaggerLink),
        apiOrigin,
      ),
    ),
  );
  for (const api of apis) {
    router.get(
      `/redoc/${api.name}`,
      sendHtml(redocPage(api, `..${api.base}/openapi.json`, 'redoc.standalone.js'), apiOrigin),
    );
  }
  // Browsers ask for /favicon.ico on every page without an icon link (Redoc's, the JSON documents).
  const favicon = fs.readFileSync(path.join(ROOT, 'static', 'favicon.ico'));
  router.get('/favicon.ico', (_req, res) => {
    res.type('image/x-icon').set('Cache-Control', 'public, max-age=86400').send(favicon);
  });
  const bundle = offlineRedocBundle();
  router.get('/redoc/redoc.standalone.js', (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'public, max-age=3600').send(bundle);
  });
  return router;
}

/** Writes the static Redoc site (an index and one page per API) into `outDir`; returns the files. */
export function buildStaticSite(outDir: string): string[] {
  const apis = documentedApis();
  fs.mkdirSync(outDir, { recursive: true });
  const files: [string, string | Buffer][] = [
    ['redoc.standalone.js', offlineRedocBundle()],
    ['index.html', indexPage(apis, (api) => `${api.name}.html`)],
    ...apis.map((api): [string, string] => [`${api.name}.html`, redocPage(api, api.document, 'redoc.standalone.js')]),
  ];
  return files.map(([name, text]) => {
    const file = path.join(outDir, name);
    fs.writeFileSync(file, text);
    return file;
  });
}
