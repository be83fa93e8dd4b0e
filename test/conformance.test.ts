// The conformance runner against the real app, and against a loopback proxy in front of it that
// breaks the contract in one way each: the runner must pass the first and fail every other.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Runner, type RunResult } from '../src/contract/runner.ts';
import { ROOT } from '../src/spec.ts';
import { client } from './helpers/http.ts';
import { signUpAdmin } from './helpers/aideer.ts';
import { registerUser } from './helpers/oneapi.ts';
import { CHECK_HEADER, startServer, type TestServer } from './helpers/server.ts';

/** How the proxy answers one exchange: it may rewrite the status, headers or JSON body. */
interface Exchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body, if the answer has one. */
  body?: unknown;
}
type Breakage = (req: { method: string; path: string }, res: Exchange) => void;
type EventBreakage = (path: string, block: string) => string;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** A proxy on a port of its own that forwards to `target`, breaking what `breakage` says. */
async function brokenProxy(
  target: string,
  breakage: Breakage = () => undefined,
  eventBreakage: EventBreakage = (_p, b) => b,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
      const reqInfo = { method: req.method!, path: new URL(req.url!, 'http://x').pathname };
      if (String(up.headers['content-type']).startsWith('text/event-stream')) {
        res.writeHead(up.statusCode!, up.headers);
        let buffer = '';
        up.setEncoding('utf8');
        up.on('data', (chunk: string) => {
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            res.write(`${eventBreakage(reqInfo.path, buffer.slice(0, cut))}\n\n`);
            buffer = buffer.slice(cut + 2);
          }
        });
        up.on('end', () => res.end(buffer));
        return;
      }
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => {
        const raw = Buffer.concat(chunks);
        const isJson = String(up.headers['content-type']).startsWith('application/json');
        const answer: Exchange = {
          status: up.statusCode!,
          headers: { ...up.headers },
          body: isJson && raw.length ? JSON.parse(raw.toString()) : undefined,
        };
        breakage(reqInfo, answer);
        const out = answer.body === undefined ? raw : Buffer.from(JSON.stringify(answer.body));
        delete answer.headers['content-length'];
        delete answer.headers['transfer-encoding'];
        res.writeHead(answer.status, { ...answer.headers, 'content-length': out.length });
        res.end(out);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('the conformance runner', function () {
  let server: TestServer;
  let admin: { username: string; password: string };
  const ROOT_PHONE = '13900000001';

  before(async () => {
    server = await startServer();
    admin = await signUpAdmin(client(server.url), server);
    // The root user a deployment makes from ONEAPI_ROOT_PHONE at start-up (src/server.ts).
    await registerUser(client(server.url), ROOT_PHONE);
    await server.db('oneapi_users').where({ phone: ROOT_PHONE }).update({ role: 100 });
  });
  after(async () => server?.close());

  const run = (baseUrl: string): Promise<RunResult> =>
    new Runner({
      baseUrl,
      apis: ['aideer', 'oneapi'],
      adminUser: admin.username,
      adminPassword: admin.password,
      rootPhone: ROOT_PHONE,
      allowUtils: false,
      maxWaitSeconds: 5,
      // The test server counts requests without this header as unchecked: these are checked by the runner.
      headers: { [CHECK_HEADER]: '1' },
    }).run();
  const violations = (r: RunResult) => r.journeys.flatMap((j) => j.violations);
  const failures = (r: RunResult) => r.journeys.flatMap((j) => j.failures);

  it('when pointed at the real app, then every journey passes with no violation, and the stream events are checked', async () => {
    const result = await run(server.url);
    expect(violations(result)).to.deep.equal([]);
    expect(failures(result)).to.deep.equal([]);
    expect(result.journeys.filter((j) => j.skipped)).to.deep.equal([]);
    // open, at least one state, the final state, close.
    expect(result.eventsChecked).to.be.at.least(3);
    const seen = result.coverage.filter((r) => r.count > 0).map((r) => `${r.api} ${r.operationId} ${r.status}`);
    expect(seen).to.include.members([
      'aideer streamTask 200',
      'aideer createTask 200',
      'aideer redeemCredits 200',
      'oneapi sendTopicMessage 200',
      'oneapi createArticle 200',
    ]);
    // The utils operations are never called without --allow-utils.
    expect(
      result.coverage.filter(
        (r) => ['initDatabase', 'createAdmin', 'dropDatabase'].includes(r.operationId) && r.count > 0,
      ),
    ).to.deep.equal([]);
  });

  it('when a proxy drops a required field from a response, then the runner reports it', async () => {
    const proxy = await brokenProxy(server.url, (req, res) => {
      if (req.method === 'GET' && req.path === '/api/v1/users/me' && res.status === 200 && isRecord(res.body))
        delete res.body.username;
    });
    try {
      const result = await run(proxy.url);
      expect(violations(result).join('\n')).to.match(
        /GET \/api\/v1\/users\/me → 200: body does not match the spec: .*username/,
      );
    } finally {
      await proxy.close();
    }
  });

  it('when a proxy answers with a status the operation does not document, then the runner reports it', async () => {
    const proxy = await brokenProxy(server.url, (req, res) => {
      if (req.method === 'GET' && req.path === '/api/topics' && res.status === 200) res.status = 203;
    });
    try {
      const result = await run(proxy.url);
      expect(violations(result).join('\n')).to.include('status 203 is not documented for listTopics');
    } finally {
      await proxy.close();
    }
  });

  it('when a proxy sends the wrong content type, then the runner reports it', async () => {
    const proxy = await brokenProxy(server.url, (req, res) => {
      if (req.path === '/api/v1/presets' && req.method === 'GET')
        res.headers['content-type'] = 'text/html; charset=utf-8';
    });
    try {
      const result = await run(proxy.url);
      expect(violations(result).join('\n')).to.include('content type "text/html" is not documented');
    } finally {
      await proxy.close();
    }
  });

  it('when a proxy breaks a stream event, then the runner reports it', async () => {
    const proxy = await brokenProxy(server.url, undefined, (p, block) =>
      p.endsWith('/stream') ? block.replace('"status":"finished"', '"status":"done"') : block,
    );
    try {
      const result = await run(proxy.url);
      expect(violations(result).join('\n')).to.match(/\/stream → 200, event .*event does not match the spec/);
    } finally {
      await proxy.close();
    }
  });

  it('when the server answers 429 with Retry-After, then the runner retries after it and passes', async () => {
    let limited = 0;
    const proxy = await brokenProxy(server.url, (req, res) => {
      // The first two calls to one operation are refused as the server's own limit would be.
      if (req.path === '/api/topics' && req.method === 'GET' && limited < 2) {
        limited++;
        res.status = 429;
        res.headers['retry-after'] = '1';
        res.body = { success: false, message: '请求过于频繁，请稍后再试' };
      }
    });
    try {
      const result = await run(proxy.url);
      expect(limited).to.equal(2);
      expect(result.retriesAfter429).to.equal(2);
      // The 429s were on contract (documented for listTopics), and the retries got the real answers.
      expect(violations(result).concat(failures(result))).to.deep.equal([]);
      expect(result.coverage.find((r) => r.operationId === 'listTopics' && r.status === '429')?.count).to.equal(2);
    } finally {
      await proxy.close();
    }
  });

  it('when run as a command against a broken server, then it exits 1 and writes the JUnit and JSON reports; against the real one it exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conformance-'));
    const proxy = await brokenProxy(server.url, (req, res) => {
      if (req.path === '/api/user/self' && req.method === 'GET' && res.status === 200) res.status = 418;
    });
    const command = (baseUrl: string, name: string) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            '-e',
            "import { main } from './src/contract/cli.ts'; process.exitCode = await main(process.argv.slice(1));",
            '--',
            '--base-url',
            baseUrl,
            '--api',
            'oneapi',
            '--header',
            `${CHECK_HEADER}: 1`,
            '--junit',
            path.join(dir, `${name}.xml`),
            '--json',
            path.join(dir, `${name}.json`),
            '--quiet',
          ],
          { cwd: ROOT, env: { ...process.env, ONEAPI_ROOT_PHONE: ROOT_PHONE }, stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        child.stdout.on('data', (c) => (out += c));
        child.on('close', (code) => resolve({ code, out }));
      });
    try {
      const broken = await command(proxy.url, 'broken');
      expect(broken.code, broken.out).to.equal(1);
      const junit = fs.readFileSync(path.join(dir, 'broken.xml'), 'utf8');
      expect(junit).to.match(/<testsuites name="conformance" tests="\d+" failures="[1-9]/);
      expect(junit).to.include('status 418 is not documented for getSelf');
      // The --json report is the run's RunResult (with a summary beside it), as the CLI wrote it.
      const report = JSON.parse(fs.readFileSync(path.join(dir, 'broken.json'), 'utf8')) as RunResult;
      expect(report.journeys.flatMap((j: { violations: string[] }) => j.violations).join('\n')).to.include(
        'status 418 is not documented for getSelf',
      );
      expect(report.coverage.every((r: { api: string }) => r.api === 'oneapi')).to.equal(true);

      const real = await command(server.url, 'real');
      expect(real.code, real.out).to.equal(0);
      expect(real.out).to.match(/0 contract violations, 0 failed steps; coverage \d+\/\d+ operation×status pairs/);
      expect(fs.readFileSync(path.join(dir, 'real.xml'), 'utf8')).to.match(/failures="0"/);
    } finally {
      await proxy.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
