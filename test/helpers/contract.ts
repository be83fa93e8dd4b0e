// The suite's contract check: one shared checker (src/contract/checker.ts, which the conformance
// runner uses too), the coverage report, and the fail-closed assertions every test response and
// every server-sent event goes through.
import fs from 'node:fs';
import path from 'node:path';
import { Contract, coverageSummary, type ResponseSeen, type StreamEventSeen } from '../../src/contract/checker.ts';
import { ROOT, type ApiName } from '../../src/spec.ts';

export { Contract, type ResponseSeen, type StreamEventSeen } from '../../src/contract/checker.ts';

export const contract = new Contract();

/** Off-contract events that reached no test (see hooks.ts): the run fails on any. */
export const offContractEvents: string[] = [];

/** Fails the test when a response is off contract (and records its coverage, as check does). */
export function assertOnContract(seen: ResponseSeen): void {
  const problems = contract.check(seen);
  if (problems.length) throw new Error(`Off-contract response:\n  ${problems.join('\n  ')}`);
}

/** Fails when an event of a stream is off contract; also noted for the end of the run. */
export function assertEventOnContract(
  seen: { method: string; url: string; status: number },
  event: StreamEventSeen,
): void {
  const problems = contract.checkEvent(seen, event);
  if (!problems.length) return;
  offContractEvents.push(...problems);
  throw new Error(`Off-contract event:\n  ${problems.join('\n  ')}`);
}

/** Writes the coverage report and returns its one-line summary. */
export function writeReport(label: string): string {
  const rows = contract.coverage();
  const dir = path.join(ROOT, 'coverage');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `contract-coverage-${label}.md`);
  const byApi = (api: ApiName) => rows.filter((r) => r.api === api);
  const lines = [
    `# Contract coverage (${label})`,
    '',
    'Every documented operation × status pair, and how many test responses exercised it.',
    '',
    '| api | operation | status | responses seen |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.api} | ${r.operationId} | ${r.status} | ${r.count || '**never**'} |`),
    '',
  ];
  fs.writeFileSync(file, lines.join('\n'));
  fs.writeFileSync(path.join(dir, `contract-coverage-${label}.json`), JSON.stringify(rows, null, 2));
  return `contract coverage (${label}): ${coverageSummary(rows)} operation×status pairs exercised (aideer ${coverageSummary(byApi('aideer'))}, oneapi ${coverageSummary(byApi('oneapi'))}); report: ${path.relative(ROOT, file)}`;
}
