// The server as a process: start-up refusals that name the setting and the OS or database error,
// stopping on SIGTERM and SIGINT through npm and through node directly, and exit that completes
// even when stdout is full or gone (issue 12, defects 3, 4, 8, 9, 12).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../src/config.ts';
import { checkedFetch } from './helpers/http.ts';
import { ROOT } from '../src/spec.ts';
import {
  alive,
  createProcessDatabase,
  processEnv,
  refusesConnections,
  SERVER_ENTRY,
  spawnServer,
  type ProcessDatabase,
  type ServerProcess,
} from './helpers/process.ts';

/** Runs the server to its exit: code, stdout and stderr. */
function runToExit(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER_ENTRY], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Polls until `pid` is gone; false if it is still there after `ms` (a hang). */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) if (!alive(pid)) return true;
  return !alive(pid);
}

describe('settings for start-up and shutdown', () => {
  const production = { NODE_ENV: 'production', JWT_SECRET: 'j'.repeat(32), ONEAPI_SECRET: 'o'.repeat(32) };

  for (const host of ['bad host', 'exa_mple.com', '-lead.example', 'a..b', `${'a'.repeat(64)}.example`, '1.2.3.4:80']) {
    it(`when HOST is ${JSON.stringify(host)}, then loading the settings fails naming HOST`, () => {
      expect(() => loadConfig({ HOST: host })).to.throw(ConfigError, 'HOST');
    });
  }
  for (const host of ['127.0.0.1', '::', '::1', '0.0.0.0', 'localhost', 'api.example.com']) {
    it(`when HOST is ${JSON.stringify(host)}, then it is accepted`, () => {
      expect(loadConfig({ HOST: host }).host).to.equal(host);
    });
  }

  it('when SHUTDOWN_TIMEOUT_SECONDS or MAX_HEADER_BYTES is out of range, then loading fails naming it; unset, the defaults are 30 s and 16384 bytes', () => {
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_SECONDS: '-1' })).to.throw(ConfigError, 'SHUTDOWN_TIMEOUT_SECONDS');
    expect(() => loadConfig({ MAX_HEADER_BYTES: '100' })).to.throw(ConfigError, 'MAX_HEADER_BYTES');
    expect(loadConfig({})).to.include({ shutdownTimeoutSeconds: 30, maxHeaderBytes: 16384 });
  });

  it('when production keeps SMS_SENDER=log, then loading fails naming SMS_SENDER; the opt-in, a webhook or One-API switched off lets it start', () => {
    expect(() => loadConfig(production)).to.throw(ConfigError, 'SMS_SENDER');
    expect(() => loadConfig({ ...production, SMS_SENDER: 'log' })).to.throw(ConfigError, 'SMS_LOG_IN_PRODUCTION');
    expect(loadConfig({ ...production, SMS_LOG_IN_PRODUCTION: 'true' }).smsSender).to.equal('log');
    expect(
      loadConfig({ ...production, SMS_SENDER: 'webhook', SMS_WEBHOOK_URL: 'https://sms.example/send' }).smsSender,
    ).to.equal('webhook');
    expect(loadConfig({ ...production, ENABLE_ONEAPI: 'false' }).smsSender).to.equal('log');
    expect(loadConfig({ NODE_ENV: 'development' }).smsSender).to.equal('log');
  });
});

describe('start-up refusals (real processes)', () => {
  let database: ProcessDatabase;
  before(async () => {
    database = await createProcessDatabase();
  });
  after(() => database.drop());

  it('when PORT is taken, then one line on stderr names PORT and EADDRINUSE, and the exit code is 1', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    try {
      const { code, stderr } = await runToExit(processEnv({ ...database.env, PORT: String(port) }));
      expect(code).to.equal(1);
      const lines = stderr.trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include(`PORT=${port}`).and.include('EADDRINUSE').and.not.include('TypeError');
    } finally {
      holder.close();
    }
  });

  it('when HOST does not resolve, then one line on stderr names HOST and the lookup error, and the exit code is 1', async () => {
    const { code, stderr } = await runToExit(processEnv({ ...database.env, HOST: 'no-such-host.invalid' }));
    expect(code).to.equal(1);
    const lines = stderr.trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0])
      .to.include('HOST=no-such-host.invalid')
      .and.match(/ENOTFOUND|EAI_AGAIN/);
  });

  it('when the database cannot be reached, then one line names its host and the reason, never the password, and no stack is printed', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { code, stdout, stderr } = await runToExit(
      processEnv({ DATA_DIR: database.env.DATA_DIR, DATABASE_URL: `postgres://app:s3cret-pw@127.0.0.1:${port}/appdb` }),
    );
    expect(code).to.equal(1);
    const lines = stderr.trim().split('\n');
    expect(lines, stderr).to.have.length(1);
    expect(lines[0]).to.include(`127.0.0.1:${port}/appdb`).and.include('ECONNREFUSED');
    expect(stdout + stderr)
      .to.not.include('s3cret-pw')
      .and.not.include('    at ')
      .and.not.include('[redacted]');
  });

  it('when NODE_ENV=production keeps the default SMS sender, then start-up is refused naming SMS_SENDER', async () => {
    const { code, stderr } = await runToExit(
      processEnv({
        ...database.env,
        NODE_ENV: 'production',
        JWT_SECRET: 'j'.repeat(32),
        ONEAPI_SECRET: 'o'.repeat(32),
      }),
    );
    expect(code).to.equal(1);
    expect(stderr.trim()).to.match(/^Refusing to start\. Invalid setting SMS_SENDER: .*SMS_LOG_IN_PRODUCTION/);
  });
});

describe('stopping (real processes)', () => {
  let database: ProcessDatabase;
  const spawned: ServerProcess[] = [];
  before(async () => {
    database = await createProcessDatabase();
  });
  after(async () => {
    for (const s of spawned) if (alive(s.pid)) s.child.kill('SIGKILL');
    await database.drop();
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`when node runs the server directly and gets ${signal}, then it exits 0 and frees its port`, async () => {
      const server = await spawnServer(processEnv(database.env));
      spawned.push(server);
      server.child.kill(signal);
      expect((await server.exited).code).to.equal(0);
      expect(await refusesConnections(server.url)).to.equal(true);
    });
  }

  it('when the server logs into a pipe nobody reads and then gets SIGTERM, then it exits anyway', async () => {
    const server = await spawnServer(processEnv({ ...database.env, LOG_LEVEL: 'debug' }));
    spawned.push(server);
    // The reader stops: the pipe (64 KB on Linux) fills with the request log lines that follow.
    server.child.stdout!.pause();
    server.child.stdout!.removeAllListeners('data');
    for (let i = 0; i < 60; i++)
      await Promise.all(
        Array.from({ length: 10 }, () => checkedFetch(new Request(`${server.url}/api/v1/${'padding-'.repeat(40)}`))),
      );
    server.child.kill('SIGTERM');
    expect(await goneWithin(server.pid, 20_000), 'the server is still alive: it hangs in exit').to.equal(true);
  });

  it("when the parent exits right after signalling, closing the server's stdout, then the server still exits", async () => {
    // The parent starts the server with piped output, waits until it serves, reports its pid,
    // sends SIGTERM and exits at once: the server's stdout and stderr lose their reader.
    const parent = `
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, ['--import', 'tsx', ${JSON.stringify(SERVER_ENTRY)}], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (c) => {
        if (!String(c).includes('"serving')) return;
        process.stdout.write(String(child.pid) + '\\n');
        child.kill('SIGTERM');
        process.exit(0);
      });
    `;
    const out = execFileSync(process.execPath, ['-e', parent], {
      cwd: ROOT,
      env: processEnv(database.env),
      encoding: 'utf8',
      timeout: 60_000,
    });
    const pid = Number(out.trim());
    expect(pid).to.be.greaterThan(0);
    expect(await goneWithin(pid, 20_000), 'the orphaned server is still alive').to.equal(true);
  });
});

describe('npm start (real processes)', () => {
  let database: ProcessDatabase;
  before(async function () {
    // npm start runs the compiled, bundled server: build it once here, as `npm start`'s prestart does.
    this.timeout(240_000);
    database = await createProcessDatabase();
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    for (const step of ['dist/scripts/build-specs.js', 'dist/scripts/bundle-server.js'])
      execFileSync(process.execPath, [step], { cwd: ROOT, stdio: 'inherit' });
    expect(fs.existsSync(path.join(ROOT, 'dist/server.js'))).to.equal(true);
  });
  after(() => database.drop());

  const npm =
    process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
      ? [process.execPath, process.env.npm_execpath]
      : ['npm'];
  const cases: [string, NodeJS.Signals, 'npm' | 'group'][] = [
    ['SIGTERM to npm alone', 'SIGTERM', 'npm'],
    ['SIGTERM to its process group', 'SIGTERM', 'group'],
    ['SIGINT to its process group', 'SIGINT', 'group'],
    ['SIGINT to npm alone', 'SIGINT', 'npm'],
  ];
  for (const [what, signal, target] of cases) {
    it(`when npm start gets ${what}, then the server drains and exits, npm exits too, and the port is free`, async () => {
      // --ignore-scripts: skip prestart's compile, done once above.
      const server = await spawnServer(processEnv(database.env), [...npm, 'start', '--silent', '--ignore-scripts'], {
        detached: true,
      });
      const serverPid = Number(server.logs.find((l) => String(l.msg).startsWith('serving'))!.pid);
      expect(serverPid).to.not.equal(server.pid);
      try {
        process.kill(target === 'group' ? -server.pid : server.pid, signal);
        const npmExit = await server.exited;
        // npm passes on its child's exit code; on SIGINT it may end by re-raising the signal, as a shell expects of Ctrl-C.
        expect(npmExit.code === 0 || npmExit.signal === signal, `npm exit ${JSON.stringify(npmExit)}`).to.equal(true);
        expect(await goneWithin(serverPid, 20_000), 'the node server outlived npm').to.equal(true);
        expect(server.logs.map((l) => l.msg)).to.include('stopped');
        expect(await refusesConnections(server.url)).to.equal(true);
      } finally {
        // Whatever is left of npm's process group (npm, a shell, node) goes with the test.
        try {
          process.kill(-server.pid, 'SIGKILL');
        } catch {
          // Nothing left.
        }
      }
    });
  }
});
