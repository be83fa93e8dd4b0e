// Request data the APIs refuse before any handler or validator sees it (SECURITY.md, "Input
// rules"): data nested deeper than the limit, at any depth, and bytes that are not UTF-8.
import { expect } from 'chai';
import { bodyOf, client, type Client, type Ok } from './helpers/http.ts';
import type { operations as OneApiOperations } from '../generated/oneapi.ts';
import { sharedServer, type TestServer } from './helpers/server.ts';
import { V1, signUp, uniqueName, type Invalid } from './helpers/aideer.ts';
import { API, authHeaders, newSession, uniquePhone, type OneApiError } from './helpers/oneapi.ts';
import { MAX_REQUEST_DEPTH } from '../src/http/bind.ts';
import { MESSAGES } from '../src/oneapi/http/envelope.ts';

type Self = Ok<OneApiOperations['getSelf']>;

/** `{"a": {"a": ... 1}}` with `levels` objects. */
function nestedObjects(levels: number): string {
  return '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
}

/** `[[[ ... ]]]` with `levels` arrays, inside a field of an object. */
function nestedArrays(field: string, levels: number): string {
  return `{"${field}":${'['.repeat(levels)}${']'.repeat(levels)}}`;
}

// superagent would send a Buffer with a JSON type as JSON of the Buffer object.
const asIs = (body: unknown) => body as string;

describe('request bodies refused before anything else reads them', () => {
  let server: TestServer;
  let api: Client;

  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  describe('nesting deeper than the limit', () => {
    for (const levels of [MAX_REQUEST_DEPTH + 1, 5_000, 150_000]) {
      it(`when an AIDeer JSON body nests ${levels} levels, then 422 in FastAPI's list shape`, async () => {
        const user = await signUp(api);
        const res = bodyOf<Invalid>(
          await api
            .put(`${V1}/users/me/password`)
            .set(user.bearer)
            .type('json')
            .send(nestedArrays('old_password', levels))
            .expect(422),
        );
        expect(res.detail[0]).to.include({
          type: 'value_error',
          msg: `Value error, must not be nested more than ${MAX_REQUEST_DEPTH} levels deep`,
        });
        expect(res.detail[0].loc.slice(0, 2)).to.deep.equal(['body', 'old_password']);
      });

      it(`when a One-API JSON body nests ${levels} levels, then 400 in the envelope and nothing is stored`, async () => {
        const phone = uniquePhone();
        const res = await api
          .post(`${API}/user/register`)
          .type('json')
          .send(`{"phone":"${phone}","phone_verification_code":"1111","school":${nestedObjects(levels)}}`)
          .expect(400);
        expect(res.body).to.deep.equal({
          success: false,
          message: `请求参数错误: 请求数据嵌套不能超过 ${MAX_REQUEST_DEPTH} 层`,
        });
        // No user has the phone: a log-in code for it is refused as unregistered.
        expect(
          bodyOf<OneApiError>(await api.get(`${API}/phone_verification`).query({ phone, purpose: 'login' }).expect(400))
            .message,
        ).to.equal(MESSAGES.phoneNotRegistered);
      });
    }

    it(`when a body nests exactly ${MAX_REQUEST_DEPTH} levels, then it reaches validation like any other`, async () => {
      const user = await signUp(api);
      const res = await api
        .put(`${V1}/users/me/password`)
        .set(user.bearer)
        .type('json')
        .send(nestedArrays('old_password', MAX_REQUEST_DEPTH - 1))
        .expect(422);
      expect(bodyOf<Invalid>(res).detail.map((d: { type: string }) => d.type)).to.include('string_type');
    });

    it('when an operation that takes no body is sent a deep one, then the body is ignored', async () => {
      const user = await signUp(api);
      await api.get(`${V1}/users/me`).set(user.bearer).type('json').send(nestedObjects(100_000)).expect(200);
    });
  });

  describe('bytes that are not UTF-8', () => {
    const latin1 = (text: string) => Buffer.from(text, 'latin1');

    it('when an AIDeer sign-up body holds a byte that is not UTF-8, then 422 and no user is stored', async () => {
      const username = uniqueName();
      const body = Buffer.concat([
        latin1(`{"username":"${username}`),
        Buffer.from([0xff, 0x28]),
        latin1('","password":"pass-word-1"}'),
      ]);
      const res = await api
        .post(`${V1}/users`)
        .set('Content-Type', 'application/json')
        .serialize(asIs)
        .send(body)
        .expect(422);
      expect(bodyOf<Invalid>(res).detail[0]).to.include({ type: 'json_invalid' });
      expect(await server.db('aideer_users').where('username', 'like', `${username}%`).first()).to.equal(undefined);
    });

    it('when a One-API profile update holds a truncated UTF-8 sequence, then 400 and the profile is unchanged', async () => {
      const session = await newSession(api, { display_name: 'before' });
      const body = Buffer.concat([latin1('{"display_name":"u'), Buffer.from([0xe4, 0xb8]), latin1('x"}')]);
      const res = await api
        .put(`${API}/user/self`)
        .set(authHeaders(session))
        .set('Content-Type', 'application/json')
        .serialize(asIs)
        .send(body)
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: '请求参数错误: 请求体不是合法的 JSON' });
      expect(
        bodyOf<Self>(await api.get(`${API}/user/self`).set(authHeaders(session)).expect(200)).data.display_name,
      ).to.equal('before');
    });

    it('when a JSON body declares a charset other than UTF-8, then it is refused', async () => {
      const res = await api
        .post(`${V1}/users`)
        .set('Content-Type', 'application/json; charset=utf-16le')
        .serialize(asIs)
        .send(Buffer.from(`{"username":"${uniqueName()}","password":"pass-word-1"}`, 'utf16le'))
        .expect(422);
      expect(bodyOf<Invalid>(res).detail[0]).to.include({ type: 'json_invalid' });
    });

    it("when a form body percent-encodes bytes that are not UTF-8, then 422 in FastAPI's list shape", async () => {
      const res = await api
        .post(`${V1}/session/oauth2/token`)
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .send('username=u%FF%28&password=x')
        .expect(422);
      expect(bodyOf<Invalid>(res).detail[0]).to.include({
        type: 'value_error',
        msg: 'Value error, the form body could not be parsed',
      });
    });

    it('when a form body carries raw bytes that are not UTF-8, then 422', async () => {
      await api
        .post(`${V1}/session/oauth2/token`)
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .send(Buffer.concat([latin1('username=u'), Buffer.from([0xc3, 0x28]), latin1('&password=x')]))
        .expect(422);
    });

    it('when the text is UTF-8 beyond ASCII, then it is stored as sent', async () => {
      const session = await newSession(api);
      await api
        .put(`${API}/user/self`)
        .set(authHeaders(session))
        .set('Content-Type', 'application/json')
        .serialize(asIs)
        .send(Buffer.from('{"display_name":"鹿 🦌"}', 'utf8'))
        .expect(200);
      expect(
        bodyOf<Self>(await api.get(`${API}/user/self`).set(authHeaders(session)).expect(200)).data.display_name,
      ).to.equal('鹿 🦌');
    });
  });
});
