// Requests whose headers exceed MAX_HEADER_BYTES: Node refuses them before the app sees them, and
// the answer must still be the API's own documented 431, read in full by a fetch client.
import net from 'node:net';
import { expect } from 'chai';
import { assertOnContract, contract } from './helpers/contract.ts';
import { CHECK_HEADER, startServer, type TestServer } from './helpers/server.ts';

const LIMIT = 4096;
const BIG = 'x'.repeat(64 * 1024);

/** Sends raw bytes and reads until the server closes the connection. */
function rawExchange(url: string, request: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(request));
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (got += c));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

describe('headers over MAX_HEADER_BYTES', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ MAX_HEADER_BYTES: String(LIMIT) });
  });
  after(() => server.close());

  async function fetchChecked(path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await fetch(`${server.url}${path}`, { method, headers: { ...headers, [CHECK_HEADER]: '1' } });
    const text = await res.text();
    const body: unknown = JSON.parse(text);
    assertOnContract({
      method,
      url: path.slice(0, 200),
      status: res.status,
      headers: Object.fromEntries(res.headers),
      body,
      text,
    });
    return { res, body };
  }

  const cases: [string, string, Record<string, string>, 'aideer' | 'oneapi'][] = [
    ['a 64 KB Authorization header on AIDeer', '/api/v1/users/me', { Authorization: `Bearer ${BIG}` }, 'aideer'],
    ['a 64 KB Authorization header on One-API', '/api/user/self', { Authorization: BIG, UserID: '1' }, 'oneapi'],
    ['a 64 KB cookie on a One-API write', '/api/topics', { Cookie: `a=${BIG}` }, 'oneapi'],
    ['a 64 KB URL under AIDeer', `/api/v1/tasks/${BIG}`, {}, 'aideer'],
    ['a 64 KB URL under One-API', `/api/topics/${BIG}`, {}, 'oneapi'],
    ['a 64 KB query on One-API', `/api/articles?q=${BIG}`, {}, 'oneapi'],
  ];
  for (const [what, path, headers, api] of cases) {
    it(`when a fetch client sends ${what}, then it reads a 431 in the API's shape with Connection: close`, async () => {
      const { res, body } = await fetchChecked(path, headers, path === '/api/topics' ? 'POST' : 'GET');
      expect(res.status).to.equal(431);
      expect(res.headers.get('connection')).to.equal('close');
      if (api === 'aideer') expect(body).to.have.keys('detail').and.property('detail').that.includes(String(LIMIT));
      else expect(body).to.deep.include({ success: false }).and.property('message').that.includes(String(LIMIT));
    });
  }

  it('when headers are just under the limit, then the request reaches the app as usual', async () => {
    const { res } = await fetchChecked('/api/user/self', { 'X-Padding': 'p'.repeat(LIMIT - 512) });
    expect(res.status).to.equal(401);
  });

  it('when the oversized request is sent raw, then the answer is one complete HTTP response and the server closes the connection', async () => {
    const answer = await rawExchange(
      server.url,
      `GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${BIG}\r\n\r\n`,
    );
    const [head, json] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).to.equal('HTTP/1.1 431 Request Header Fields Too Large');
    expect(head).to.match(/\r\nConnection: close(\r\n|$)/);
    expect(Number(/Content-Length: (\d+)/.exec(head)?.[1])).to.equal(Buffer.byteLength(json, 'latin1'));
    const body: unknown = JSON.parse(json);
    expect(body).to.have.keys('detail');
    assertOnContract({
      method: 'GET',
      url: '/api/v1/users/me',
      status: 431,
      headers: { connection: 'close', 'content-type': /Content-Type: ([^\r]+)/.exec(head)?.[1] },
      body,
      text: json,
    });
  });

  it('when the specs are read, then every operation of both APIs documents the 431', () => {
    const missing = contract
      .operations()
      .filter((op) => !op.responses['431'])
      .map((op) => `${op.api} ${op.operationId}`);
    expect(missing).to.deep.equal([]);
  });
});
