// The one http.Server both APIs are served from (the entry point and the tests build it here): the
// header-size limit answered in each API's own error shape, and a drain for shutdown.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { detail } from '../aideer/http/errors.ts';
import { fail } from '../oneapi/http/envelope.ts';

export interface HttpServerOptions {
  /** Largest request line plus headers, in bytes (MAX_HEADER_BYTES). */
  maxHeaderBytes: number;
}

export interface HttpServer {
  server: http.Server;
  /** Listens, resolving with the address, or rejecting with the OS error (EADDRINUSE, ENOTFOUND…). */
  listen: (port: number, host: string) => Promise<AddressInfo>;
  /**
   * Stops accepting at once, closes idle keep-alive connections at once, answers the requests in
   * flight with `Connection: close`, and resolves when every connection is gone, or at `deadlineAt`
   * (ms since the epoch), when the ones left are cut: not before `settled` (the app's own drain,
   * whose last words, such as a stream's final event, must still go out). Resolves with the number cut.
   */
  drain: (deadlineAt: number, settled?: Promise<unknown>) => Promise<number>;
}

// How long a client that sent oversized headers may take to stop sending before its socket is
// destroyed (ending it at once would reset the connection before the client reads the 431).
const LINGER_MS = 5000;
// How long responses ended at the drain deadline may take to reach their clients before the rest is cut.
const FLUSH_MS = 1000;

/** The 431 as the API the request line names would write it. */
function headersTooLarge(requestStart: string, limit: number): { status: number; body: unknown } {
  const target = /^[A-Z]+ (\S+)/.exec(requestStart)?.[1] ?? '';
  const pathname = target.split('?')[0];
  if (pathname.startsWith('/api/') && pathname !== '/api/v1' && !pathname.startsWith('/api/v1/')) {
    return fail(431, `请求头过大：请求行与请求头合计不能超过 ${limit} 字节`);
  }
  return detail(431, `Request header fields too large: the request line and headers may take at most ${limit} bytes`);
}

export function createHttpServer(handler: http.RequestListener, opts: HttpServerOptions): HttpServer {
  const inFlight = new Set<http.ServerResponse>();
  let draining = false;
  const server = http.createServer({ maxHeaderSize: opts.maxHeaderBytes }, (req, res) => {
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      // The connection this response leaves idle goes now, not at the keep-alive timeout.
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
    if (draining) res.setHeader('Connection', 'close');
    handler(req, res);
  });

  const answered = new WeakSet<Duplex>();
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    if (answered.has(socket)) return;
    answered.add(socket);
    // A response already under way on this connection cannot be followed by another one.
    // `_httpMessage` is Node's own link from a socket to its response, in none of its types.
    const busy = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || busy) return void socket.destroy();
    if (err.code !== 'HPE_HEADER_OVERFLOW') {
      // Node's own answers to the other parse errors.
      const status =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
            ? '413 Payload Too Large'
            : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      return;
    }
    const { status, body } = headersTooLarge(
      err.rawPacket?.subarray(0, 2048).toString('latin1') ?? '',
      opts.maxHeaderBytes,
    );
    const json = JSON.stringify(body);
    // Read and drop what the client still sends, so it gets the answer rather than a reset.
    socket.on('data', () => undefined);
    socket.resume();
    socket.end(
      `HTTP/1.1 ${status} Request Header Fields Too Large\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          const address = server.address();
          // Listening on a port (not a pipe), the address is always an AddressInfo.
          if (address !== null && typeof address === 'object') resolve(address);
          else reject(new Error(`listening on ${address}, not on a TCP port`));
        });
      });
    },
    drain(deadlineAt, settled = Promise.resolve()) {
      draining = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
      return new Promise((resolve) => {
        let cut = 0;
        const timer = setTimeout(
          () => {
            void settled
              .catch(() => undefined)
              .then(async () => {
                // A response whose headers went out (a stream) is ended, not cut: a destroyed socket
                // can lose the last bytes written to it, such as a stream's final event.
                const open = [...inFlight].filter((res) => res.headersSent && !res.writableEnded);
                for (const res of open) res.end();
                await Promise.race([
                  Promise.all(
                    open.map((res) => new Promise((done) => (res.closed ? done(null) : res.once('close', done)))),
                  ),
                  sleep(FLUSH_MS),
                ]);
                cut = inFlight.size;
                server.closeAllConnections();
              });
          },
          Math.max(0, deadlineAt - Date.now()),
        );
        // close() also closes the connections idle now (Node 19+).
        server.close(() => {
          clearTimeout(timer);
          resolve(cut);
        });
      });
    },
  };
}
