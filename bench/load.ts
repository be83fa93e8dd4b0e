// Load generator, run as a forked child process (see throughput.ts): it gets its own core, so the
// client's CPU does not compete with the server's event loop. It takes jobs over IPC and answers
// each with latencies and status counts. Only 127.0.0.1 is ever addressed.
import http from 'node:http';

export interface LoadJob {
  port: number;
  path: string;
  headers?: Record<string, string>;
  requests: number;
  concurrency: number;
}

export interface LoadResult {
  elapsedMs: number;
  /** Latency of each request in ms, sorted ascending. */
  latenciesMs: number[];
  statuses: Record<string, number>;
}

const REQUEST_TIMEOUT_MS = 10_000;

async function run(job: LoadJob): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
  const latencies = new Float64Array(job.requests);
  const statuses: Record<string, number> = {};
  let next = 0;

  const one = () =>
    new Promise<void>((resolve) => {
      const i = next++;
      const start = performance.now();
      const done = (status: string) => {
        latencies[i] = performance.now() - start;
        statuses[status] = (statuses[status] ?? 0) + 1;
        resolve();
      };
      const req = http.get({ host: '127.0.0.1', port: job.port, path: job.path, headers: job.headers, agent }, (res) => {
        res.resume(); // drain the body; the latency counts until its end
        res.on('end', () => done(String(res.statusCode)));
        res.on('error', () => done('error'));
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
      req.on('error', () => done('error'));
    });

  const worker = async () => {
    while (next < job.requests) await one();
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  const elapsedMs = performance.now() - start;
  agent.destroy();
  return { elapsedMs, latenciesMs: Array.from(latencies).sort((a, b) => a - b), statuses };
}

process.on('message', (job: LoadJob) => {
  void run(job).then((result) => process.send!(result));
});
