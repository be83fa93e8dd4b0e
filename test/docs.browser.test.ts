// The docs as a reader sees them (decision G8): headless Chromium opens /docs, /redoc and the static
// site with every request that is not to the test server (or from disk) aborted and recorded; each
// test then asserts that nothing else was attempted. Responses the browser gets from the server go
// through the contract check like any other test response.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { chromium, type BrowserContext, type Page, type Response as PageResponse } from 'playwright-core';
import { client, type Client } from './helpers/http.ts';
import { contract } from './helpers/contract.ts';
import { API, newSession, uniquePhone } from './helpers/oneapi.ts';
import { V1, signUp } from './helpers/aideer.ts';
import { CHECK_HEADER, sharedServer, type TestServer } from './helpers/server.ts';
import { buildStaticSite } from '../src/docs.ts';
import type { ApiName } from '../src/spec.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];
// The browser reaches the test server by a name, as a reader would: Swagger UI skips some outside
// calls (its validator badge) for localhost and 127.0.0.1 only, and the served documents must name
// the host the page used.
const HOST = 'docs.test';
const SWAGGER_NAMES: Record<ApiName, string> = { aideer: 'AIDeer API (/api/v1)', oneapi: 'One-API (/api)' };

/** Operations of one contract as Swagger UI ids them (`operations-<tag>-<operationId>`). */
function specOperations(api: ApiName): { operationId: string; swaggerId: string }[] {
  return contract
    .operations()
    .filter((op) => op.api === api)
    .map((op) => {
      const tag = String((op.operation.tags ?? ['default'])[0]);
      return { operationId: op.operationId, swaggerId: `operations-${tag.replace(/\s/g, '_')}-${op.operationId}` };
    });
}

describe('the docs in a browser with no internet', function () {
  let server: TestServer;
  let api: Client;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let siteDir: string;
  let origin: string; // the test server, as the browser addresses it
  const offNetwork: string[] = [];
  // What the pages' Content-Security-Policy refused, as Chromium reports it on the console.
  const refusedByPolicy: string[] = [];
  const responseChecks: Promise<string[]>[] = [];
  // Console errors (a 404 shows there as "Failed to load resource") and 404s from the server.
  const consoleErrors: string[] = [];
  const notFound: string[] = [];

  const isAllowed = (url: string) => url.startsWith(`${origin}/`) || /^(file|data|blob):/.test(url);

  async function checkOnContract(res: PageResponse): Promise<string[]> {
    const url = new URL(res.url());
    // Pages and assets are outside both contracts: no need to pull their bodies out of the browser.
    if (url.origin !== origin || !contract.locate(res.request().method(), url.pathname).api) return [];
    // Redirects have no body to read.
    const text = res.status() >= 300 && res.status() < 400 ? '' : await res.text();
    const headers = await res.allHeaders();
    let body: unknown;
    if (String(headers['content-type']).startsWith('application/json')) body = JSON.parse(text);
    return contract.check({
      method: res.request().method(),
      url: url.pathname,
      status: res.status(),
      headers,
      body,
      text,
    });
  }

  /** Every test ends here: nothing left the machine, and every server response was on contract. */
  async function expectOfflineAndOnContract() {
    await page.waitForLoadState('networkidle');
    expect(offNetwork.splice(0), 'requests to the internet').to.deep.equal([]);
    expect(refusedByPolicy.splice(0), 'refused by the Content-Security-Policy').to.deep.equal([]);
    expect((await Promise.all(responseChecks.splice(0))).flat(), 'off-contract responses').to.deep.equal([]);
  }

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      const message = `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium)`;
      if (process.env.CI === 'true') throw new Error(`${message}: CI must run the browser tests`);
      console.warn(`    skipping the browser tests: ${message}`);
      this.skip();
    }
    server = await sharedServer();
    api = client(server.url);
    origin = `http://${HOST}:${new URL(server.url).port}`;
    siteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'docs-site-'));
    buildStaticSite(siteDir);
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
      // Marks the browser's requests as checked: checkOnContract sees every response.
      extraHTTPHeaders: { [CHECK_HEADER]: '1' },
    });
    context.on('request', (req) => {
      if (!isAllowed(req.url())) offNetwork.push(`${req.method()} ${req.url()}`);
    });
    await context.route('**/*', (route) =>
      isAllowed(route.request().url()) ? route.continue() : route.abort('internetdisconnected'),
    );
    context.on('response', (res) => {
      responseChecks.push(checkOnContract(res));
      if (res.status() === 404) notFound.push(`${res.request().method()} ${res.url()}`);
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) refusedByPolicy.push(msg.text());
      if (msg.type() === 'error') consoleErrors.push(`${msg.text()} (${msg.location().url})`);
    });
  });

  after(async () => {
    await context?.close();
    for (const dir of [userDataDir, siteDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function openSwagger(name: ApiName) {
    await page.goto(`${origin}/docs/?urls.primaryName=${encodeURIComponent(SWAGGER_NAMES[name])}`);
    await page.locator(`#${specOperations(name)[0].swaggerId}`).waitFor();
  }

  /** Runs one operation from Swagger UI; `pathname` is the path its call must reach. */
  async function tryOut(swaggerId: string, pathname: string, params: Record<string, string> = {}) {
    const op = page.locator(`#${swaggerId}`);
    await op.locator('.opblock-summary').click();
    await op.locator('button.try-out__btn').click();
    for (const [name, value] of Object.entries(params)) {
      const row = op.locator(`tr[data-param-name="${name}"]`);
      if (await row.locator('select').count()) await row.locator('select').selectOption(value);
      else await row.locator('input').fill(value);
    }
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === pathname),
      op.locator('button.execute').click(),
    ]);
    await op.locator('.live-responses-table tr.response .response-col_status').waitFor();
    return { op, response };
  }

  it('when /docs is opened, then Swagger UI lists every operation of each API, chosen with its selector', async () => {
    await page.goto(`${origin}/docs`);
    for (const name of ['aideer', 'oneapi'] as const) {
      await page.locator('.topbar select').selectOption({ label: SWAGGER_NAMES[name] });
      await page.locator(`#${specOperations(name)[0].swaggerId}`).waitFor();
      // The project compiles without the DOM library: a page function names the element fields it reads.
      const shown = await page.locator('.opblock').evaluateAll((els: { id: string }[]) => els.map((e) => e.id));
      const expected = specOperations(name).map((op) => op.swaggerId);
      expect(shown.length, name).to.equal(expected.length);
      expect([...shown].sort(), name).to.deep.equal([...expected].sort());
    }
    await expectOfflineAndOnContract();
  });

  /** What Swagger UI shows as a warning or error box (a document it cannot fully read). */
  const warningBoxes = () =>
    page
      .locator('.swagger-ui .error-wrapper, .swagger-ui .errors-wrapper, .swagger-ui .version-pragma')
      .allInnerTexts();

  it('when each API is shown in /docs, then no warning or error box appears, and nothing the pages ask for is missing', async () => {
    for (const name of ['aideer', 'oneapi'] as const) {
      await openSwagger(name);
      // The boxes render with the document's info block: wait for it, then for the page to settle.
      await page.locator('.swagger-ui .info .title').waitFor();
      await page.waitForLoadState('networkidle');
      expect(await warningBoxes(), name).to.deep.equal([]);
    }
    for (const url of ['/docs/', '/redoc/', '/redoc/aideer', '/redoc/oneapi']) {
      await page.goto(`${origin}${url}`);
      await page.waitForLoadState('networkidle');
      // Headless Chromium never asks for the tab icon: ask for it as a browser with tabs would (the
      // page's icon links, else /favicon.ico).
      const links = await page
        .locator('link[rel~="icon"]')
        .evaluateAll((ls) => ls.map((l) => (l as unknown as { href: string }).href));
      const icons = links.length ? links : [new URL('/favicon.ico', page.url()).href];
      for (const icon of icons) {
        const res = await context.request.get(icon.replace(origin, server.url), { headers: { [CHECK_HEADER]: '1' } });
        expect(res.status(), icon).to.equal(200);
        expect(res.headers()['content-type'], icon).to.match(/^image\//);
      }
    }
    expect(notFound.splice(0), '404s').to.deep.equal([]);
    expect(consoleErrors.splice(0), 'console errors').to.deep.equal([]);
    await expectOfflineAndOnContract();
  });

  it('when a One-API operation is tried out from /docs, then the call reaches the server and its answer shows in the page', async () => {
    await openSwagger('oneapi');
    const phone = uniquePhone();
    const { op, response } = await tryOut('operations-user-sendPhoneVerification', `${API}/phone_verification`, {
      phone,
      purpose: 'register',
    });
    // Swagger UI called the server the served document names: the host the page was opened at.
    expect(new URL(response.url()).origin).to.equal(origin);
    expect(await op.locator('.live-responses-table tr.response .response-col_status').innerText()).to.equal('200');
    expect(await op.locator('.live-responses-table tr.response .response-col_description').innerText()).to.include(
      '"data": "1111"',
    );
    // The server issued a code to that phone: registering with it now succeeds.
    await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' }).expect(200);
    await expectOfflineAndOnContract();
  });

  it("when One-API's Authorize dialog gets a token and a UserID, then a call tried out from /docs sends both headers", async () => {
    const session = await newSession(api);
    await openSwagger('oneapi');
    await page.locator('.scheme-container button.authorize').click();
    const dialog = page.locator('.dialog-ux');
    for (const [scheme, value] of [
      ['AccessToken', session.token],
      ['UserId', String(session.id)],
    ]) {
      const form = dialog.locator('.auth-container').filter({ hasText: scheme });
      await form.locator('input').fill(value);
      await form.locator('button.authorize').click();
    }
    await dialog.locator('button.close-modal').click();
    const { op, response } = await tryOut('operations-user-getSelf', `${API}/user/self`);
    const sent = await response.request().allHeaders();
    expect(sent.authorization).to.equal(session.token);
    expect(sent.userid).to.equal(String(session.id));
    expect(await op.locator('.live-responses-table tr.response .response-col_status').innerText()).to.equal('200');
    expect(await op.locator('.live-responses-table tr.response .response-col_description').innerText()).to.include(
      `"username": "${session.username}"`,
    );
    await expectOfflineAndOnContract();
  });

  it("when AIDeer's Authorize dialog logs a user in with the password form, then a call tried out from /docs sends the bearer token and shows that user", async () => {
    const user = await signUp(api);
    await openSwagger('aideer');
    await page.locator('.scheme-container button.authorize').click();
    const dialog = page.locator('.dialog-ux');
    await dialog.locator('#oauth_username').fill(user.username);
    await dialog.locator('#oauth_password').fill(user.password);
    const [login] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === `${V1}/session/oauth2/token`),
      dialog.locator('button.authorize').first().click(),
    ]);
    const form = login.request();
    // The token URL the served document names: absolute, on the address the page was opened at.
    expect(form.url()).to.equal(`${origin}${V1}/session/oauth2/token`);
    expect(form.method()).to.equal('POST');
    expect(form.headers()['content-type']).to.match(/^application\/x-www-form-urlencoded/);
    expect(Object.fromEntries(new URLSearchParams(form.postData() ?? ''))).to.include({
      grant_type: 'password',
      username: user.username,
      password: user.password,
    });
    expect(login.status()).to.equal(200);
    const { access_token: token } = (await login.json()) as { access_token: string };
    await dialog.locator('button.close-modal').click();

    const { op, response } = await tryOut('operations-users-readUserMe', `${V1}/users/me`);
    expect((await response.request().allHeaders()).authorization).to.equal(`Bearer ${token}`);
    expect(await op.locator('.live-responses-table tr.response .response-col_status').innerText()).to.equal('200');
    expect(await op.locator('.live-responses-table tr.response .response-col_description').innerText()).to.include(
      `"username": "${user.username}"`,
    );
    await expectOfflineAndOnContract();
  });

  /** From an index page, every reference it links to lists exactly its API's operations. */
  async function expectRedocReferences(indexUrl: string) {
    await page.goto(indexUrl);
    const links = await page
      .locator('a')
      .evaluateAll((as: { textContent: string | null; href: string }[]) =>
        as.map((a) => [a.textContent ?? '', a.href]),
      );
    const references = (['aideer', 'oneapi'] as const).map((name) => {
      const title = String(contract.docs[name].info.title);
      const link = links.find(([text]) => text === title);
      expect(link, `a link to ${title} on ${indexUrl}`).to.not.equal(undefined);
      return { name, href: link![1] };
    });
    for (const { name, href } of references) {
      await page.goto(href);
      await page.locator('[data-section-id^="operation/"]').first().waitFor();
      await page.waitForLoadState('networkidle');
      const shown = await page
        .locator('[data-section-id^="operation/"]')
        .evaluateAll((els: { getAttribute(name: string): string | null }[]) =>
          els.map((e) => e.getAttribute('data-section-id')!.slice('operation/'.length)),
        );
      const expected = specOperations(name).map((op) => op.operationId);
      expect(shown.length, href).to.equal(expected.length);
      expect([...shown].sort(), href).to.deep.equal([...expected].sort());
    }
  }

  it('when /redoc is opened, then its index links the Redoc reference of each API, listing every operation', async () => {
    await expectRedocReferences(`${origin}/redoc`);
    await expectOfflineAndOnContract();
  });

  it('when the static site is opened from disk, then its index links the reference of each API, listing every operation', async () => {
    await expectRedocReferences(pathToFileURL(path.join(siteDir, 'index.html')).href);
    await expectOfflineAndOnContract();
  });
});
