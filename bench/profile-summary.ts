// Prints the functions with the most self time in a .cpuprofile (node --cpu-prof), and the share
// of time spent under a few packages. Usage: tsx bench/profile-summary.ts FILE [top]
import fs from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const [file, topArg] = process.argv.slice(2);
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
// Shares are of the busy time: idle samples (waiting for requests) are left out.
for (const [id] of self) if (byId.get(id)!.callFrame.functionName === '(idle)') self.delete(id);
const total = [...self.values()].reduce((a, b) => a + b, 0);
const where = (n: Node) =>
  n.callFrame.url.replace(/^file:\/\/.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|dist)\//, '$1/');
const byFunction = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${where(n)}:${n.callFrame.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + t);
}
const pct = (t: number) => `${((t / total) * 100).toFixed(1)}%`.padStart(6);
console.log(`${file}: ${(total / 1e6).toFixed(1)} s busy; top self time (share of busy time):`);
for (const [k, t] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25)))
  console.log(`${pct(t)}  ${k}`);
// Self time by package (or our own code), to see which layer costs what.
const byPackage = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const url = n.callFrame.url;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  const key = m
    ? m[1]
    : url.includes('/dist/src/') || url.includes('/src/')
      ? '(our code)'
      : url.startsWith('node:')
        ? '(node core)'
        : `(${n.callFrame.functionName || 'native/other'})`;
  byPackage.set(key, (byPackage.get(key) ?? 0) + t);
}
console.log('self time by package:');
for (const [k, t] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(`${pct(t)}  ${k}`);
