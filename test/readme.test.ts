// The README's walk-through, run as a newcomer would paste it: its start command starts a real
// server process (on a free port and a fresh data folder), then every curl command runs in order,
// with the placeholders filled in from the answers before it. Each answer must match the README's
// `# → ...` line, and goes through the contract check like every other test response.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { EventStreamParser } from '../src/contract/eventStream.ts';
import { streamEventOf } from '../src/contract/checker.ts';
import { ROOT } from '../src/spec.ts';
import { assertEventOnContract, assertOnContract } from './helpers/contract.ts';

const run = promisify(execFile);
const README_ORIGIN = 'http://127.0.0.1:8000';

interface Step {
  command: string;
  expected?: string;
}

/** The walk-through's shell blocks: the start command, then the steps with their `# →` lines. */
function walkThrough(): { start: string; blocks: Step[][] } {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const from = readme.indexOf('<!-- walkthrough:');
  const to = readme.indexOf('\n## ', from);
  const blocks = [...readme.slice(from, to).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  const [start, ...rest] = blocks;
  return {
    start: start.trim(),
    blocks: rest.map((block) => {
      const steps: Step[] = [];
      for (const line of block.replace(/\\\n\s*/g, '').split('\n')) {
        if (line.startsWith('# → ')) steps[steps.length - 1].expected = line.slice(4);
        else if (line.trim() && !line.startsWith('#')) steps.push({ command: line.trim() });
      }
      return steps;
    }),
  };
}

/** Matches an answer against a `# →` pattern, collecting the placeholders' values. */
function match(pattern: unknown, actual: unknown, found: Record<string, unknown>, at: string) {
  if (typeof pattern === 'string' && /^<#[^>]+>$/.test(pattern)) {
    expect(actual, at).to.be.a('number');
    found[`<${pattern.slice(2)}`] = actual;
  } else if (typeof pattern === 'string' && /^<[^>]+>$/.test(pattern)) {
    expect(actual, at).to.be.a('string');
    found[pattern] = actual;
  } else if (pattern && typeof pattern === 'object') {
    expect(actual, at).to.be.an('object');
    for (const [k, v] of Object.entries(pattern)) match(v, (actual as Record<string, unknown>)[k], found, `${at}.${k}`);
  } else expect(actual, at).to.deep.equal(pattern);
}

describe('the README walk-through', function () {
  let server: ChildProcess | undefined;
  let dir: string;
  let origin: string;
  const { start, blocks } = walkThrough();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-'));
    expect(start, 'the start command').to.match(/npm start$/);
    const env = Object.fromEntries([...start.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
    // `npm start` builds and runs dist/; the same server from source here, so the test needs no build.
    server = spawn(
      process.execPath,
      [
        '--import',
        pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href,
        path.join(ROOT, 'src/server.ts'),
      ],
      {
        cwd: dir,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, PORT: '0', DATA_DIR: dir, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    origin = await new Promise<string>((resolve, reject) => {
      let log = '';
      server!.stdout!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const url = /"url":"(http:[^"]+)"/.exec(log);
        if (url) resolve(url[1]);
      });
      server!.on('exit', (code) => reject(new Error(`the server exited with ${code}: ${log}`)));
    });
  });

  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when its AIDeer and One-API commands are pasted in order with the placeholders filled in, then each answers as the README shows', async () => {
    expect(
      blocks.map((b) => b.length),
      'steps per block',
    ).to.satisfy((ns: number[]) => ns.length === 2 && ns.every((n) => n >= 6));
    const found: Record<string, unknown> = {};
    const headersFile = path.join(dir, 'headers.txt');
    for (const step of blocks.flat()) {
      expect(step.command, 'every command is a curl').to.match(/^curl /);
      expect(step.expected, `${step.command}: the README shows its answer`).to.be.a('string');
      const placeholders = step.command.match(/<[^>]+>/g) ?? [];
      for (const p of placeholders)
        expect(found, `${step.command}: ${p} comes from an earlier answer`).to.have.property(p);
      const filled = placeholders
        .reduce((c, p) => c.split(p).join(String(found[p])), step.command)
        .split(README_ORIGIN)
        .join(origin);
      const { stdout } = await run('bash', ['-c', filled.replace(/^curl /, `curl -sS -D '${headersFile}' `)], {
        encoding: 'utf8',
      });

      const head = fs.readFileSync(headersFile, 'utf8').trim().split(/\r?\n/);
      const status = Number(head[0].split(' ')[1]);
      const headers = Object.fromEntries(
        head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      const url = new URL(/(http:\/\/[^\s']+)/.exec(filled)![1]);
      const method = /-X (\w+)/.exec(filled)?.[1] ?? (/ -d /.test(filled) ? 'POST' : 'GET');
      const streamed = String(headers['content-type']).startsWith('text/event-stream');
      const body: unknown = streamed || !stdout ? undefined : JSON.parse(stdout);
      const seen = { method, url: url.pathname + url.search, status };
      assertOnContract({ ...seen, headers, body, text: streamed ? '' : stdout });
      expect(status, `${step.command}: ${stdout}`).to.be.within(200, 299);
      if (streamed) {
        for (const e of new EventStreamParser().feed(stdout)) assertEventOnContract(seen, streamEventOf(e));
        let from = 0;
        for (const piece of step.expected!.split(' … ')) {
          const at = stdout.indexOf(piece, from);
          expect(at, `${step.command}: "${piece}" in ${stdout}`).to.be.at.least(0);
          from = at + piece.length;
        }
      } else {
        match(JSON.parse(step.expected!.replace(/(?<!")<([^>]+)>(?!")/g, '"<#$1>"')), body, found, step.command);
      }
    }
  });
});
