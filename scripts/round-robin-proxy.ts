// A small round-robin proxy for trying several instances on one machine (README, "Running several
// instances"): `npx tsx scripts/round-robin-proxy.ts 8000 http://127.0.0.1:8001 http://127.0.0.1:8002`.
// It asks each backend's /readyz every second and sends requests only to those that answer 200 (so
// a draining instance gets no new requests), passes streams through unbuffered, and sets
// X-Forwarded-For. For production, use a real load balancer (see the nginx example in the README).
import http from 'node:http';

const [portArg, ...backends] = process.argv.slice(2);
if (!portArg || !backends.length) {
  console.error('usage: round-robin-proxy.ts <port> <backend-url> [<backend-url>...]');
  process.exit(1);
}

const ready = new Set<string>();
async function check(): Promise<void> {
  await Promise.all(
    backends.map(async (url) => {
      const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) ready.add(url);
      else ready.delete(url);
    }),
  );
}
await check();
setInterval(() => void check(), 1000).unref();

let turn = 0;
const server = http.createServer((req, res) => {
  const live = backends.filter((url) => ready.has(url));
  if (!live.length)
    return void res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"detail":"No instance is ready"}');
  const target = new URL(req.url ?? '/', live[turn++ % live.length]);
  const forwarded = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
  const upstream = http.request(
    target,
    { method: req.method, headers: { ...req.headers, host: target.host, 'x-forwarded-for': forwarded } },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () =>
    res.headersSent
      ? res.destroy()
      : res.writeHead(502, { 'Content-Type': 'application/json' }).end('{"detail":"Bad gateway"}'),
  );
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
});
server.listen(Number(portArg), '127.0.0.1', () =>
  console.log(`proxy on http://127.0.0.1:${portArg} → ${backends.join(', ')}`),
);
