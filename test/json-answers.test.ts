// How JSON answers are written (src/http/bind.ts writeJson): the body, its type and length, on a
// plain GET and on a conditional one, which no API answers 304 (its answers carry no validators).
import { expect } from 'chai';
import { client, type Client } from './helpers/http.ts';
import { sharedServer, type TestServer } from './helpers/server.ts';
import { V1, signUp } from './helpers/aideer.ts';

describe('readUserMe — GET /users/me: how the JSON answer is written', () => {
  let server: TestServer;
  let api: Client;

  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  it('when the answer is JSON, then it has no ETag, its type is JSON in UTF-8 and its length is the bytes of its body', async () => {
    const user = await signUp(api);
    const res = await api.get(`${V1}/users/me`).set(user.bearer).expect(200);
    expect(res.headers['content-type']).to.equal('application/json; charset=utf-8');
    expect(res.headers.etag).to.equal(undefined);
    expect(Number(res.headers['content-length'])).to.equal(Buffer.byteLength(res.text));
    expect(JSON.parse(res.text)).to.include({ id: user.id });
  });

  it('when the request is conditional, then the answer is still 200 with the whole body, never 304', async () => {
    const user = await signUp(api);
    const plain = await api.get(`${V1}/users/me`).set(user.bearer).expect(200);
    for (const condition of [
      { 'If-None-Match': '*' },
      { 'If-None-Match': 'W/"x"' },
      { 'If-Modified-Since': new Date(Date.now() + 86_400_000).toUTCString() },
    ]) {
      const res = await api.get(`${V1}/users/me`).set(user.bearer).set(condition).expect(200);
      expect(res.text, JSON.stringify(condition)).to.equal(plain.text);
    }
  });
});
