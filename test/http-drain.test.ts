// The HTTP half of a drain (src/http/server.ts), on loopback with a handler the test holds: idle
// keep-alive connections go at once (not at the keep-alive timeout), the request in flight is
// answered with `Connection: close`, no new connection is accepted, and the drain ends when the
// last connection does, or cuts what is left at the deadline.
import http from 'node:http';
import { expect } from 'chai';
import { createHttpServer, type HttpServer } from '../src/http/server.ts';
import { refusesConnections } from './helpers/process.ts';

interface Held {
  release(): void;
}

/** A server whose `/hold` requests wait for the test; everything else answers at once. */
async function heldServer(): Promise<{ http: HttpServer; url: string; held: Promise<Held> }> {
  let gotHeld!: (h: Held) => void;
  const held = new Promise<Held>((resolve) => (gotHeld = resolve));
  const server = createHttpServer(
    (req, res) => {
      if (req.url === '/hold') return gotHeld({ release: () => res.end('done') });
      res.end('ok');
    },
    { maxHeaderBytes: 16384 },
  );
  // Far beyond the test: only the drain can close an idle connection in time.
  server.server.keepAliveTimeout = 600_000;
  const { port } = await server.listen(0, '127.0.0.1');
  return { http: server, url: `http://127.0.0.1:${port}`, held };
}

function get(url: string, agent: http.Agent): Promise<{ status: number; connection?: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }));
      })
      .on('error', reject);
  });
}

describe('HTTP drain', () => {
  it('when a drain starts, then idle keep-alive connections close at once, new ones are refused, the request in flight ends with Connection: close, and the drain resolves after it', async () => {
    const { http: server, url, held } = await heldServer();
    const idleAgent = new http.Agent({ keepAlive: true });
    expect((await get(`${url}/`, idleAgent)).connection).to.equal('keep-alive');
    const idleSocket = Object.values(idleAgent.freeSockets).flat()[0]!;
    const idleClosed = new Promise<void>((resolve) => idleSocket.once('close', () => resolve()));
    const busyAgent = new http.Agent({ keepAlive: true });
    const inFlight = get(`${url}/hold`, busyAgent);
    const request = await held;

    let drained = false;
    const drain = server.drain(Date.now() + 600_000).then((cut) => ((drained = true), cut));
    await idleClosed;
    expect(await refusesConnections(url)).to.equal(true);
    expect(drained).to.equal(false);
    request.release();
    expect(await inFlight).to.deep.equal({ status: 200, connection: 'close', body: 'done' });
    expect(await drain).to.equal(0);
    idleAgent.destroy();
    busyAgent.destroy();
  });

  it('when the request in flight outlives the deadline, then it is cut there and the drain reports it', async () => {
    const { http: server, url, held } = await heldServer();
    const agent = new http.Agent({ keepAlive: true });
    const inFlight = get(`${url}/hold`, agent).then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code,
    );
    await held;
    expect(await server.drain(Date.now() + 50)).to.equal(1);
    expect(await inFlight).to.equal('ECONNRESET');
    agent.destroy();
  });
});
