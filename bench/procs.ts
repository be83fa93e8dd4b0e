// Child processes of the bench: the real server, the peers, the stream server. Each is pinned to
// the server core with taskset (when it exists), speaks only on 127.0.0.1, and is killed by the
// step that started it.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { ROOT } from '../src/spec.ts';

export const HAS_TASKSET = (() => {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
export const SERVER_CORE = 0;
export const CLIENT_CORE = 1;

/** Moves this process (the load generator and stream clients) to the client core. */
export function pinSelf(): void {
  if (HAS_TASKSET)
    execFileSync('taskset', ['-a', '-p', '-c', String(CLIENT_CORE), String(process.pid)], { stdio: 'ignore' });
}

/** A port the OS says is free now (the server is told it; a spawned server's URL is not logged at warn level). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Every process started here and not yet stopped, so the bench can kill them however it ends. */
export const running = new Set<Proc>();

export interface Proc {
  child: ChildProcess;
  port: number;
  /** User + system CPU of the process so far, µs (from /proc, 10 ms ticks). */
  cpuUs(): number;
  /** Resident set size now, bytes. */
  rss(): number;
  stop(): Promise<void>;
  stderr(): string;
}

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

function procCpuUs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US; // utime, stime
}

function procRss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN; // the process has exited
  }
}

/**
 * Starts `node <args>` on the server core with `env`, then polls `probe` on `port` until it
 * answers (any status, or 200 with `need200`). Fails after `timeoutMs` or if the process exits first.
 */
export async function startNode(
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
  opts: { probe?: string; timeoutMs?: number; ipc?: boolean; need200?: boolean } = {},
): Promise<Proc> {
  const cmd = HAS_TASKSET ? 'taskset' : process.execPath;
  const argv = HAS_TASKSET ? ['-c', String(SERVER_CORE), process.execPath, ...args] : args;
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe', ...(opts.ipc ? (['ipc'] as const) : [])],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const deadline = performance.now() + (opts.timeoutMs ?? 20_000);
  const proc: Proc = {
    child,
    port,
    cpuUs: () => procCpuUs(child.pid!),
    rss: () => procRss(child.pid!),
    stderr: () => stderr,
    async stop() {
      running.delete(proc);
      if (exited) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(killer);
    },
  };
  running.add(proc);
  for (;;) {
    if (exited) throw new Error(`node ${args.join(' ')} exited before serving: ${stderr.trim()}`);
    if (performance.now() > deadline) {
      await proc.stop();
      throw new Error(`node ${args.join(' ')} did not answer on port ${port}: ${stderr.trim()}`);
    }
    const got = await status(port, opts.probe ?? '/');
    if (opts.need200 ? got === 200 : got > 0) return proc;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Status of one GET on a fresh connection, 0 when nothing answers. */
export function status(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = net.connect(port, '127.0.0.1');
    let data = '';
    req.once('connect', () => req.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    req.on('data', (d) => (data += d.toString()));
    req.once('error', () => resolve(0));
    req.once('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
  });
}
