// `aideer-oneapi-conformance --base-url URL`: runs the conformance journeys against a live server,
// prints operation × status coverage, writes a JUnit XML and a JSON report, and exits 1 on any
// contract violation or failed step (2 on a usage error).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { coverageSummary, type CoverageRow } from './checker.ts';
import { Runner, type RunResult } from './runner.ts';
import type { ApiName } from '../spec.ts';

const USAGE = `Usage: aideer-oneapi-conformance --base-url URL [options]

Runs black-box journeys over the AIDeer API (/api/v1) and One-API (/api) of a live server and
checks every response and stream event against the contracts (openapi/*.yaml).

  --base-url URL         server origin, e.g. https://staging.example.com (env CONFORMANCE_BASE_URL)
  --api NAME             aideer or oneapi; repeat or comma-separate (default: both)
  --admin-user NAME      AIDeer admin user (env ADMIN_USER): codes, credits, tasks, user admin
  --admin-password PASS  its password (env ADMIN_PASSWD)
  --root-phone PHONE     One-API root user's phone (env ONEAPI_ROOT_PHONE): adding an article
  --fixed-code CODE      the verification code of a One-API environment with fixed codes
                         (env CONFORMANCE_FIXED_CODE; default: the code the server returns, if any)
  --allow-utils          also call AIDeer's utils operations (init, admin, drop): drop WIPES the database
  --header 'NAME: VALUE'  sent with every request (repeatable), e.g. a gateway's key
  --max-wait SECONDS     longest Retry-After honoured on a 429 (default 1500: a sign-in window)
  --junit PATH           JUnit XML report (default conformance-report/junit.xml)
  --json PATH            JSON report (default conformance-report/report.json)
  --quiet                print only the summary
  --help                 this text

Exit status: 0 when every response is on contract and every step got what it expected, 1 otherwise,
2 on a usage error.`;

function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'base-url': { type: 'string' },
        api: { type: 'string', multiple: true },
        'admin-user': { type: 'string' },
        'admin-password': { type: 'string' },
        'root-phone': { type: 'string' },
        'fixed-code': { type: 'string' },
        'allow-utils': { type: 'boolean', default: false },
        header: { type: 'string', multiple: true },
        'max-wait': { type: 'string', default: '1500' },
        junit: { type: 'string', default: 'conformance-report/junit.xml' },
        json: { type: 'string', default: 'conformance-report/report.json' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    usageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const baseUrl = values['base-url'] ?? env.CONFORMANCE_BASE_URL;
  if (!baseUrl) usageError('--base-url is required');
  try {
    new URL(baseUrl);
  } catch {
    usageError(`--base-url ${baseUrl} is not a URL (say http://127.0.0.1:8000)`);
  }
  const apis = (values.api ?? ['aideer,oneapi']).flatMap((a) => a.split(',')).map((a) => a.trim());
  const apiNames: ApiName[] = [];
  for (const api of apis) {
    if (api !== 'aideer' && api !== 'oneapi') usageError(`--api ${api}: expected aideer or oneapi`);
    apiNames.push(api);
  }
  const maxWait = Number(values['max-wait']);
  if (!Number.isFinite(maxWait) || maxWait < 0)
    usageError(`--max-wait ${values['max-wait']}: expected a number of seconds`);
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const colon = h.indexOf(':');
    if (colon < 1) usageError(`--header ${h}: expected 'NAME: VALUE'`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  return {
    runner: {
      headers,
      baseUrl,
      apis: [...new Set(apiNames)],
      adminUser: values['admin-user'] ?? env.ADMIN_USER,
      adminPassword: values['admin-password'] ?? env.ADMIN_PASSWD,
      rootPhone: values['root-phone'] ?? env.ONEAPI_ROOT_PHONE,
      fixedCode: values['fixed-code'] ?? env.CONFORMANCE_FIXED_CODE,
      allowUtils: values['allow-utils'],
      maxWaitSeconds: maxWait,
    },
    junit: values.junit,
    json: values.json,
    quiet: values.quiet,
  };
}

const xml = (s: string) =>
  s
    .replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/\p{Cc}/gu, (c) => (c === '\t' || c === '\n' || c === '\r' || c > '\u001f' ? c : ''));

export function junitXml(result: RunResult): string {
  const cases = result.journeys.map((j) => {
    const problems = [...j.violations.map((v) => `contract violation: ${v}`), ...j.failures];
    const inner = j.skipped
      ? `<skipped message="${xml(j.skipped)}"/>`
      : problems.length
        ? `<failure message="${xml(problems[0].slice(0, 500))}" type="${j.violations.length ? 'ContractViolation' : 'StepFailure'}">${xml(problems.join('\n'))}</failure>`
        : '';
    return `    <testcase classname="conformance.${j.api}" name="${xml(j.name)}" time="${(j.durationMs / 1000).toFixed(3)}">${inner}</testcase>`;
  });
  const failures = result.journeys.filter((j) => !j.skipped && j.violations.length + j.failures.length > 0).length;
  const skipped = result.journeys.filter((j) => j.skipped).length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="conformance" tests="${result.journeys.length}" failures="${failures}" time="${(result.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="conformance ${xml(result.baseUrl)}" tests="${result.journeys.length}" failures="${failures}" skipped="${skipped}" timestamp="${result.startedAt}" time="${(result.durationMs / 1000).toFixed(3)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** Coverage as one line per operation: each documented status with ✓ (seen) or · (not seen). */
export function coverageTable(rows: CoverageRow[]): string[] {
  const byOp = new Map<string, CoverageRow[]>();
  for (const r of rows) byOp.set(`${r.api} ${r.operationId}`, [...(byOp.get(`${r.api} ${r.operationId}`) ?? []), r]);
  const width = Math.max(...[...byOp.keys()].map((k) => k.length));
  return [...byOp].map(
    ([op, rs]) => `  ${op.padEnd(width)}  ${rs.map((r) => `${r.status}${r.count ? '✓' : '·'}`).join(' ')}`,
  );
}

export async function main(argv = process.argv.slice(2), env = process.env): Promise<number> {
  const options = parseOptions(argv, env);
  const say = (line: string) => (options.quiet ? undefined : console.log(line));
  const result = await new Runner({ ...options.runner, log: say }).run();
  say('\nCoverage (operation: status✓ exercised, status· not):');
  for (const line of coverageTable(result.coverage)) say(line);
  for (const [file, text] of [
    [options.junit, junitXml(result)],
    [options.json, JSON.stringify({ ...result, summary: { coverage: coverageSummary(result.coverage) } }, null, 2)],
  ]) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, text);
  }
  const violations = result.journeys.reduce((n, j) => n + j.violations.length, 0);
  const failures = result.journeys.reduce((n, j) => n + j.failures.length, 0);
  const skipped = result.journeys.filter((j) => j.skipped).length;
  console.log(
    `conformance ${result.baseUrl}: ${result.journeys.length - skipped} journeys run, ${skipped} skipped; ${violations} contract violations, ${failures} failed steps; ` +
      `coverage ${coverageSummary(result.coverage)} operation×status pairs, ${result.eventsChecked} stream events checked; reports: ${options.junit}, ${options.json}`,
  );
  return violations + failures > 0 ? 1 : 0;
}
