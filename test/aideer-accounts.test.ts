// AIDeer accounts: authentication, users, session (password and WeChat), avatars, credits and
// redeem codes, utils (decisions A1, A2, A8–A12), answered as the original FastAPI service.
import { expect } from 'chai';
import sharp from 'sharp';
import bcrypt from 'bcrypt';
import jwt from 'jsonwebtoken';
import { bodyOf, client, type Client, type Ok } from './helpers/http.ts';
import type { components, operations } from '../generated/aideer.ts';
import { sharedServer, startServer, type TestServer } from './helpers/server.ts';
import {
  V1,
  giveCredits,
  logIn,
  mintToken,
  signUp,
  signUpAdmin,
  uniqueName,
  type AideerUser,
  type Detail,
  type Invalid,
} from './helpers/aideer.ts';
import { startFakeWeChat, type FakeWeChat } from './helpers/fakeWeChat.ts';

type UserRead = components['schemas']['UserRead'];
type Credits = components['schemas']['CreditRecords'];
type ValidationError = components['schemas']['ValidationError'];

describe('AIDeer authentication', () => {
  let server: TestServer;
  let api: Client;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  it('when no Authorization header is sent, then 401 Not authenticated with WWW-Authenticate: Bearer', async () => {
    const res = await api.get(`${V1}/users/me`).expect(401);
    expect(res.body).to.deep.equal({ detail: 'Not authenticated' });
    expect(res.headers['www-authenticate']).to.equal('Bearer');
  });

  it('when the scheme is not Bearer, then 401 Not authenticated', async () => {
    const user = await signUp(api);
    const res = await api.get(`${V1}/users/me`).set('Authorization', `Basic ${user.token}`).expect(401);
    expect(res.body).to.deep.equal({ detail: 'Not authenticated' });
  });

  it('when the token is only in the query string, then it is not accepted', async () => {
    const user = await signUp(api);
    await api.get(`${V1}/users/me`).query({ access_token: user.token }).expect(401);
  });

  const invalid: [string, () => string][] = [
    ['garbage', () => 'not.a.jwt'],
    [
      'signed with another key',
      () => mintToken({ sub: '1' }, { expiresIn: 600 }, 'another-key-0123456789abcdefghijklmnop'),
    ],
    ['expired', () => mintToken({ sub: '1', exp: Math.floor(Date.now() / 1000) - 10 }, {})],
    ['without a subject', () => mintToken({ foo: 'bar' })],
    ['with a subject that is not a user id', () => mintToken({ sub: 'abc' })],
    [
      'signed with "none"',
      () =>
        `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"1"}').toString('base64url')}.`,
    ],
  ];
  for (const [what, token] of invalid) {
    it(`when the token is ${what}, then 401 Could not validate credentials: Invalid token`, async () => {
      const res = await api.get(`${V1}/users/me`).set('Authorization', `Bearer ${token()}`).expect(401);
      expect(res.body).to.deep.equal({ detail: 'Could not validate credentials: Invalid token' });
      expect(res.headers['www-authenticate']).to.equal(undefined);
    });
  }

  it('when a refresh token is used where an access token is expected, then 400 Access token required', async () => {
    const user = await signUp(api);
    const res = await api
      .get(`${V1}/users/me`)
      .set('Authorization', `Bearer ${mintToken({ sub: String(user.id), refresh: true })}`)
      .expect(400);
    expect(res.body).to.deep.equal({ detail: 'Could not validate credentials: Access token required' });
  });

  it("when the token's user was deleted, then 401 User not found", async () => {
    const admin = await signUpAdmin(api, server);
    const user = await signUp(api);
    await api.delete(`${V1}/users/${user.id}`).set(admin.bearer).expect(200);
    const res = await api.get(`${V1}/users/me`).set(user.bearer).expect(401);
    expect(res.body).to.deep.equal({ detail: 'Could not validate credentials: User not found' });
  });

  it('when a token is issued, then it carries sub, iat and exp (3 days) and no refresh mark', async () => {
    const user = await signUp(api);
    const claims = jwt.decode(user.token, { json: true })!;
    expect(claims.sub).to.equal(String(user.id));
    expect(claims.exp! - claims.iat!).to.equal(4320 * 60);
    expect(claims.refresh).to.equal(undefined);
  });

  it('when a non-admin calls an admin operation, then 403 Insufficient permissions before the parameters are validated', async () => {
    const user = await signUp(api);
    const res = await api.get(`${V1}/users`).query({ limit: 'lots' }).set(user.bearer).expect(403);
    expect(res.body).to.deep.equal({ detail: 'Insufficient permissions' });
  });
});

describe('AIDeer users', () => {
  let server: TestServer;
  let api: Client;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  describe('createUser — POST /users (sign-up)', () => {
    it('when a new name signs up without a token, then the user is created with 0 credits and the default avatar', async () => {
      const username = uniqueName();
      const res = await api.post(`${V1}/users`).send({ username, password: 'secret1', nickname: 'Alice' }).expect(200);
      expect(res.body).to.deep.equal({
        username,
        permission: 1,
        nickname: 'Alice',
        id: bodyOf<UserRead>(res).id,
        avatar: '/static/avatars/default.webp',
        credits_left: 0,
      });
      const row = await server.db('aideer_users').where({ username }).first();
      expect(row!.password_hash).to.match(/^\$2b\$/);
    });

    it('when the name is taken, then 400 Username already exists', async () => {
      const user = await signUp(api);
      const res = await api.post(`${V1}/users`).send({ username: user.username, password: 'secret1' }).expect(400);
      expect(res.body).to.deep.equal({ detail: 'Username already exists' });
    });

    it('when permission 2 is asked for without an admin token, then 403 Cannot create admin user', async () => {
      const res = await api
        .post(`${V1}/users`)
        .send({ username: uniqueName(), password: 'secret1', permission: 2 })
        .expect(403);
      expect(res.body).to.deep.equal({ detail: 'Insufficient permissions: Cannot create admin user' });
      const user = await signUp(api);
      await api
        .post(`${V1}/users`)
        .set(user.bearer)
        .send({ username: uniqueName(), password: 'secret1', permission: 2 })
        .expect(403);
    });

    it('when an admin creates an admin, then it is created', async () => {
      const admin = await signUpAdmin(api, server);
      const res = await api
        .post(`${V1}/users`)
        .set(admin.bearer)
        .send({ username: uniqueName(), password: 'secret1', permission: 2 })
        .expect(200);
      expect(bodyOf<UserRead>(res).permission).to.equal(2);
    });

    it('when an invalid token is sent along, then 401, even though sign-up needs none', async () => {
      const res = await api
        .post(`${V1}/users`)
        .set('Authorization', 'Bearer nope')
        .send({ username: uniqueName(), password: 'secret1' })
        .expect(401);
      expect(res.body).to.deep.equal({ detail: 'Could not validate credentials: Invalid token' });
      const refresh = await api
        .post(`${V1}/users`)
        .set('Authorization', `Bearer ${mintToken({ sub: '1', refresh: true })}`)
        .send({ username: uniqueName(), password: 'secret1' })
        .expect(400);
      expect(bodyOf<Detail>(refresh).detail).to.equal('Could not validate credentials: Access token required');
    });

    it("when fields break their limits, then 422 in FastAPI's list shape", async () => {
      const res = await api.post(`${V1}/users`).send({ username: 'a', password: '123', permission: 7 }).expect(422);
      const byField = Object.fromEntries(
        bodyOf<Invalid>(res).detail.map((d): [string, ValidationError] => [d.loc.join('.'), d]),
      );
      expect(byField['body.username']).to.deep.equal({
        type: 'string_too_short',
        loc: ['body', 'username'],
        msg: 'String should have at least 2 characters',
        input: 'a',
        ctx: { min_length: 2 },
      });
      expect(byField['body.password'].type).to.equal('string_too_short');
      expect(byField['body.permission']).to.include({
        type: 'less_than_equal',
        msg: 'Input should be less than or equal to 2',
        input: 7,
      });
    });

    it('when a required field is missing, then 422 missing with the body as input', async () => {
      const { detail } = bodyOf<Invalid>(await api.post(`${V1}/users`).send({ username: uniqueName() }).expect(422));
      expect(detail).to.deep.equal([
        { type: 'missing', loc: ['body', 'password'], msg: 'Field required', input: detail[0].input },
      ]);
    });
  });

  describe('loginForAccessToken — POST /session/oauth2/token', () => {
    it('when the form is right, then a bearer token that works', async () => {
      const user = await signUp(api);
      const res = await api.get(`${V1}/users/me`).set(user.bearer).expect(200);
      expect(res.body).to.include({ id: user.id, username: user.username });
    });

    it('when the password is wrong, the user unknown, or the user has no password, then 401 Incorrect username or password', async () => {
      const user = await signUp(api);
      for (const form of [
        { username: user.username, password: 'wrong-pass' },
        { username: uniqueName(), password: 'whatever' },
      ]) {
        const res = await api.post(`${V1}/session/oauth2/token`).type('form').send(form).expect(401);
        expect(res.body).to.deep.equal({ detail: 'Incorrect username or password' });
      }
      await server.db('aideer_users').where({ id: user.id }).update({ password_hash: null });
      await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: user.username, password: user.password })
        .expect(401);
    });

    it('when the stored hash is not one bcrypt can read, then 401 like a wrong password', async () => {
      const user = await signUp(api);
      await server.db('aideer_users').where({ id: user.id }).update({ password_hash: 'not-a-bcrypt-hash' });
      const res = await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: user.username, password: user.password })
        .expect(401);
      expect(res.body).to.deep.equal({ detail: 'Incorrect username or password' });
    });

    it('when the user is unknown or has no password, then bcrypt still runs, so timing does not tell which names exist', async () => {
      const original = bcrypt.compare;
      let calls = 0;
      (bcrypt as { compare: unknown }).compare = (...args: Parameters<typeof original>) => {
        calls += 1;
        return original(...args);
      };
      try {
        await api
          .post(`${V1}/session/oauth2/token`)
          .type('form')
          .send({ username: uniqueName(), password: 'whatever' })
          .expect(401);
        expect(calls).to.equal(1);
        const user = await signUp(api);
        await server.db('aideer_users').where({ id: user.id }).update({ password_hash: null });
        await api
          .post(`${V1}/session/oauth2/token`)
          .type('form')
          .send({ username: user.username, password: user.password })
          .expect(401);
        expect(calls).to.be.greaterThan(1);
      } finally {
        (bcrypt as { compare: unknown }).compare = original;
      }
    });

    it('when grant_type is present but not password, then 422', async () => {
      const user = await signUp(api);
      const res = await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: user.username, password: user.password, grant_type: 'client_credentials' })
        .expect(422);
      expect(bodyOf<Invalid>(res).detail[0]).to.include({ type: 'string_pattern_mismatch' });
      await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: user.username, password: user.password, grant_type: 'password', scope: 'x' })
        .expect(200);
    });

    it('when the credentials come as JSON instead of a form, then 422', async () => {
      const user = await signUp(api);
      await api
        .post(`${V1}/session/oauth2/token`)
        .send({ username: user.username, password: user.password })
        .expect(422);
    });

    it("when a bcrypt $2b$ cost-12 hash (the original's format) is stored, then its password verifies", async () => {
      const user = await signUp(api);
      // A $2b$ hash of "correct horse battery" with cost 12, as passlib stored them in the original.
      await server
        .db('aideer_users')
        .where({ id: user.id })
        .update({ password_hash: '$2b$12$yHmb.Nh.WX41/AuUJLrP9uGwfbU.Ncpdtl7bWuqFpWixF.k5.pZ4G' });
      await logIn(api, user.username, 'correct horse battery');
      await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: user.username, password: 'correct horse batter' })
        .expect(401);
    });
  });

  describe('readUserMe — GET /users/me', () => {
    it("when a user reads itself, then its own record, as GET /users/{user_id} shows it, and never another user's", async () => {
      const a = await signUp(api, { nickname: 'Me' });
      const b = await signUp(api);
      const me = await api.get(`${V1}/users/me`).set(a.bearer).expect(200);
      expect(me.body).to.deep.equal({
        id: a.id,
        username: a.username,
        nickname: 'Me',
        permission: 1,
        avatar: '/static/avatars/default.webp',
        credits_left: 0,
      });
      expect((await api.get(`${V1}/users/${a.id}`).set(b.bearer).expect(200)).body).to.deep.equal(me.body);
      expect((await api.get(`${V1}/users/me`).set(b.bearer).expect(200)).body).to.include({
        id: b.id,
        username: b.username,
      });
    });
  });

  describe('listUsers — GET /users', () => {
    it('when an admin lists users, then they come in id order, paged', async () => {
      const admin = await signUpAdmin(api, server);
      const a = await signUp(api);
      const b = await signUp(api);
      const all = await api.get(`${V1}/users`).query({ offset: 0, limit: 100 }).set(admin.bearer).expect(200);
      const ids = bodyOf<Ok<operations['listUsers']>>(all).map((u) => u.id);
      expect(ids).to.deep.equal([...ids].sort((x: number, y: number) => x - y));
      const index = ids.indexOf(a.id);
      const page = await api.get(`${V1}/users`).query({ offset: index, limit: 2 }).set(admin.bearer).expect(200);
      expect(bodyOf<Ok<operations['listUsers']>>(page).map((u) => u.id)).to.deep.equal([a.id, b.id]);
      const defaults = await api.get(`${V1}/users`).set(admin.bearer).expect(200);
      expect(bodyOf<Ok<operations['listUsers']>>(defaults).length).to.be.at.most(10);
    });

    it('when the limit is out of range, then 422 naming the query parameter', async () => {
      const admin = await signUpAdmin(api, server);
      const res = bodyOf<Invalid>(await api.get(`${V1}/users`).query({ limit: 500 }).set(admin.bearer).expect(422));
      expect(res.detail[0]).to.include({ type: 'less_than_equal' });
      expect(res.detail[0].loc).to.deep.equal(['query', 'limit']);
    });
  });

  describe('readUser — GET /users/{user_id}', () => {
    it('when any user reads another user, then 200; an unknown id is 404 and a non-integer id 422', async () => {
      const a = await signUp(api);
      const b = await signUp(api);
      const res = await api.get(`${V1}/users/${b.id}`).set(a.bearer).expect(200);
      expect(bodyOf<UserRead>(res).username).to.equal(b.username);
      expect((await api.get(`${V1}/users/2147483000`).set(a.bearer).expect(404)).body).to.deep.equal({
        detail: 'User not found',
      });
      const bad = bodyOf<Invalid>(await api.get(`${V1}/users/abc`).set(a.bearer).expect(422));
      expect(bad.detail[0]).to.include({ type: 'int_parsing' });
      expect(bad.detail[0].loc).to.deep.equal(['path', 'user_id']);
      await api.get(`${V1}/users/99999999999999`).set(a.bearer).expect(422);
    });
  });

  describe('updateUser — PUT /users/{user_id}', () => {
    it('when a user renames itself, then only the fields sent change', async () => {
      const a = await signUp(api, { nickname: 'Old' });
      const name = uniqueName();
      const res = await api.put(`${V1}/users/${a.id}`).set(a.bearer).send({ username: name }).expect(200);
      expect(res.body).to.include({ username: name, nickname: 'Old', permission: 1 });
      const cleared = await api
        .put(`${V1}/users/${a.id}`)
        .set(a.bearer)
        .send({ username: name, nickname: null, permission: 0 })
        .expect(200);
      expect(cleared.body).to.include({ nickname: null, permission: 0 });
    });

    it('when a user updates someone else, then 403; an admin may', async () => {
      const a = await signUp(api);
      const b = await signUp(api);
      const res = await api.put(`${V1}/users/${b.id}`).set(a.bearer).send({ username: b.username }).expect(403);
      expect(res.body).to.deep.equal({ detail: 'Insufficient permissions: You cannot update other users' });
      const admin = await signUpAdmin(api, server);
      await api.put(`${V1}/users/${b.id}`).set(admin.bearer).send({ username: b.username, permission: 2 }).expect(200);
    });

    it('when a user makes itself admin, then 403', async () => {
      const a = await signUp(api);
      const res = await api
        .put(`${V1}/users/${a.id}`)
        .set(a.bearer)
        .send({ username: a.username, permission: 2 })
        .expect(403);
      expect(res.body).to.deep.equal({ detail: 'Insufficient permissions: You cannot set user permission to admin' });
    });

    it('when the new name is taken, then 400 and nothing changes; an unknown id is 404', async () => {
      const a = await signUp(api, { nickname: 'Keep' });
      const b = await signUp(api);
      const res = await api
        .put(`${V1}/users/${a.id}`)
        .set(a.bearer)
        .send({ username: b.username, nickname: 'Changed' })
        .expect(400);
      expect(res.body).to.deep.equal({ detail: 'Username already exists' });
      expect((await api.get(`${V1}/users/${a.id}`).set(a.bearer).expect(200)).body).to.include({
        username: a.username,
        nickname: 'Keep',
      });
      await api.put(`${V1}/users/2147483000`).set(a.bearer).send({ username: a.username }).expect(404);
    });
  });

  describe('updateMyPassword — PUT /users/me/password', () => {
    it('when the old password is right, then the new one logs in and the old one no longer does', async () => {
      const a = await signUp(api);
      const res = await api
        .put(`${V1}/users/me/password`)
        .set(a.bearer)
        .send({ old_password: a.password, new_password: 'brand-new-pass' })
        .expect(200);
      expect(res.body).to.deep.equal({ message: 'Password updated successfully' });
      await logIn(api, a.username, 'brand-new-pass');
      await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: a.username, password: a.password })
        .expect(401);
    });

    it('when the old password is missing or wrong, then 400', async () => {
      const a = await signUp(api);
      expect(
        (await api.put(`${V1}/users/me/password`).set(a.bearer).send({ new_password: 'brand-new-pass' }).expect(400))
          .body,
      ).to.deep.equal({ detail: 'Old password is required' });
      expect(
        (
          await api
            .put(`${V1}/users/me/password`)
            .set(a.bearer)
            .send({ old_password: 'wrong-pass', new_password: 'brand-new-pass' })
            .expect(400)
        ).body,
      ).to.deep.equal({ detail: 'Old password is incorrect' });
      await api
        .put(`${V1}/users/me/password`)
        .set(a.bearer)
        .send({ old_password: a.password, new_password: '123' })
        .expect(422);
    });

    it('when a user without a password sets one, then no old password is needed', async () => {
      const a = await signUp(api);
      await server.db('aideer_users').where({ id: a.id }).update({ password_hash: null });
      await api.put(`${V1}/users/me/password`).set(a.bearer).send({ new_password: 'first-pass' }).expect(200);
      await logIn(api, a.username, 'first-pass');
    });
  });

  describe('resetUserPassword — PUT /users/{user_id}/password', () => {
    it('when an admin resets a password, then it works; a user cannot; an unknown id is 404', async () => {
      const admin = await signUpAdmin(api, server);
      const a = await signUp(api);
      await api.put(`${V1}/users/${a.id}/password`).set(a.bearer).send({ new_password: 'reset-pass' }).expect(403);
      const res = await api
        .put(`${V1}/users/${a.id}/password`)
        .set(admin.bearer)
        .send({ new_password: 'reset-pass' })
        .expect(200);
      expect(res.body).to.deep.equal({ message: 'Password updated successfully' });
      await logIn(api, a.username, 'reset-pass');
      await api
        .put(`${V1}/users/2147483000/password`)
        .set(admin.bearer)
        .send({ new_password: 'reset-pass' })
        .expect(404);
    });
  });

  describe('deleteUser — DELETE /users/{user_id}', () => {
    it('when an admin deletes a user, then the user, its credit records and its token are gone in one go', async () => {
      const admin = await signUpAdmin(api, server);
      const a = await signUp(api);
      await giveCredits(server, a.id, 50);
      const res = await api.delete(`${V1}/users/${a.id}`).set(admin.bearer).expect(200);
      expect(res.body).to.deep.equal({ message: 'User deleted successfully' });
      expect(await server.db('aideer_credit_records').where({ user_id: a.id })).to.have.length(0);
      await api.get(`${V1}/users/me`).set(a.bearer).expect(401);
      await api.delete(`${V1}/users/${a.id}`).set(admin.bearer).expect(404);
    });

    it('when a non-admin deletes, then 403', async () => {
      const a = await signUp(api);
      await api.delete(`${V1}/users/${a.id}`).set(a.bearer).expect(403);
    });
  });
});

/** Real image files, encoded by a real codec. */
async function image(format: 'png' | 'jpeg' | 'webp', width: number, height: number, noise = false): Promise<Buffer> {
  const channels = 3;
  const pixels = Buffer.alloc(width * height * channels);
  for (let i = 0; i < pixels.length; i++) pixels[i] = noise ? Math.floor(Math.random() * 256) : (i * 7) % 256;
  return sharp(pixels, { raw: { width, height, channels } })
    .toFormat(format, format === 'png' ? { compressionLevel: 0 } : {})
    .toBuffer();
}

describe('AIDeer avatars', () => {
  let server: TestServer;
  let api: Client;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  /** The user's avatar path as GET /users/me shows it, and the image served there. */
  async function storedAvatar(user: AideerUser) {
    const avatar = await avatarOf(user);
    const res = await api
      .get(avatar)
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(res.headers['content-type']).to.equal('image/webp');
    return { avatar: avatar, meta: await sharp(res.body as Buffer).metadata() };
  }

  async function avatarOf(user: AideerUser): Promise<string> {
    return bodyOf<UserRead>(await api.get(`${V1}/users/me`).set(user.bearer).expect(200)).avatar;
  }

  const cases: [string, 'png' | 'jpeg' | 'webp', number, number, number, number][] = [
    ['a large landscape PNG', 'png', 1200, 600, 128, 64],
    ['a portrait JPEG', 'jpeg', 300, 900, 43, 128],
    ['a small WebP', 'webp', 40, 30, 40, 30],
    ['a large square JPEG', 'jpeg', 2000, 2000, 128, 128],
  ];
  describe('setMyAvatar — POST /users/me/avatar', () => {
    for (const [what, format, w, h, ew, eh] of cases) {
      it(`when ${what} (${w}×${h}) is uploaded, then a ${ew}×${eh} WebP is stored and served`, async () => {
        const a = await signUp(api);
        const res = await api
          .post(`${V1}/users/me/avatar`)
          .set(a.bearer)
          .attach('avatar_file', await image(format, w, h), `avatar.${format}`)
          .expect(200);
        expect(res.body).to.deep.equal({ message: 'Avatar updated successfully' });
        const { avatar, meta } = await storedAvatar(a);
        expect(avatar).to.match(/^\/static\/avatars\/[0-9a-f]{64}\.webp$/);
        expect(meta).to.include({ format: 'webp', width: ew, height: eh });
      });
    }

    it('when a JPEG carries an EXIF rotation, then the avatar is stored upright', async () => {
      const a = await signUp(api);
      // 200×100 pixels, to be shown rotated a quarter turn (orientation 6): 100×200 upright
      const rotated = await sharp(await image('jpeg', 200, 100))
        .withMetadata({ orientation: 6 })
        .jpeg()
        .toBuffer();
      await api.post(`${V1}/users/me/avatar`).set(a.bearer).attach('avatar_file', rotated, 'r.jpg').expect(200);
      expect((await storedAvatar(a)).meta).to.include({ width: 64, height: 128 });
    });

    it('when a user replaces its avatar, then the old file is removed unless another user has it', async () => {
      const a = await signUp(api);
      const b = await signUp(api);
      const first = await image('png', 100, 50);
      await api.post(`${V1}/users/me/avatar`).set(a.bearer).attach('avatar_file', first, 'a.png').expect(200);
      await api.post(`${V1}/users/me/avatar`).set(b.bearer).attach('avatar_file', first, 'a.png').expect(200);
      const shared = await avatarOf(a);
      await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', await image('png', 50, 100), 'b.png')
        .expect(200);
      await api.get(shared).expect(200); // b still uses it
      await api
        .post(`${V1}/users/me/avatar`)
        .set(b.bearer)
        .attach('avatar_file', await image('png', 70, 70), 'c.png')
        .expect(200);
      await api.get(shared).expect(404);
    });

    it('when the file is text or a truncated image, then 422 Invalid image file and the avatar is unchanged', async () => {
      const a = await signUp(api);
      const text = await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', Buffer.from('hello, not an image'), 'notes.txt')
        .expect(422);
      expect(text.body).to.deep.equal({ detail: 'Invalid image file' });
      const jpeg = await image('jpeg', 400, 400, true);
      await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'cut.jpg')
        .expect(422);
      const png = await image('png', 300, 300, true);
      await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', png.subarray(0, Math.floor(png.length / 2)), 'cut.png')
        .expect(422);
      expect(await avatarOf(a)).to.equal('/static/avatars/default.webp');
    });

    it('when the file field is missing, then 422 missing avatar_file', async () => {
      const a = await signUp(api);
      const res = bodyOf<Invalid>(
        await api.post(`${V1}/users/me/avatar`).set(a.bearer).field('other', 'x').expect(422),
      );
      expect(res.detail[0]).to.include({ type: 'missing' });
      expect(res.detail[0].loc).to.deep.equal(['body', 'avatar_file']);
    });

    it('when the file is over 5 MiB, then 413', async () => {
      const a = await signUp(api);
      const big = await image('png', 1500, 1500, true);
      expect(big.length).to.be.greaterThan(6 * 1024 * 1024);
      const res = await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', big, 'big.png')
        .expect(413);
      expect(res.body).to.deep.equal({ detail: 'Request body too large' });
    });
  });

  describe('getMyAvatar — GET /users/me/avatar', () => {
    it('when the caller asks for its avatar, then 307 to it, which serves the image', async () => {
      const a = await signUp(api);
      const def = await api.get(`${V1}/users/me/avatar`).set(a.bearer).redirects(0).expect(307);
      expect(def.headers.location).to.equal(`${server.url}/static/avatars/default.webp`);
      await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', await image('png', 64, 64), 'a.png')
        .expect(200);
      const mine = await api.get(`${V1}/users/me/avatar`).set(a.bearer).redirects(0).expect(307);
      const avatar = await avatarOf(a);
      expect(mine.headers.location).to.equal(`${server.url}${avatar}`);
      await api.get(`${new URL(mine.headers.location).pathname}`).expect(200);
    });

    it('when the Host header is not a plain host name, then the avatar redirect is relative rather than echoing it', async () => {
      const a = await signUp(api);
      const res = await api
        .get(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .set('Host', 'evil_host.example')
        .redirects(0)
        .expect(307);
      expect(res.headers.location).to.equal('/static/avatars/default.webp');
    });

    it('when PUBLIC_BASE_URL is set, then avatar redirects point at it', async () => {
      const own = await startServer({ PUBLIC_BASE_URL: 'https://api.example.com/' });
      try {
        const ownApi = client(own.url);
        const a = await signUp(ownApi);
        const res = await ownApi.get(`${V1}/users/me/avatar`).set(a.bearer).redirects(0).expect(307);
        expect(res.headers.location).to.equal('https://api.example.com/static/avatars/default.webp');
      } finally {
        await own.close();
      }
    });
  });

  describe('getUserAvatar — GET /users/{user_id}/avatar', () => {
    it("when a user asks for another user's avatar, then 307 to the same file the owner is sent to; an unknown id is 404", async () => {
      const a = await signUp(api);
      const other = await signUp(api);
      const before = await api.get(`${V1}/users/${a.id}/avatar`).set(other.bearer).redirects(0).expect(307);
      expect(before.headers.location).to.equal(`${server.url}/static/avatars/default.webp`);
      await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', await image('png', 64, 64), 'a.png')
        .expect(200);
      const mine = await api.get(`${V1}/users/me/avatar`).set(a.bearer).redirects(0).expect(307);
      const theirs = await api.get(`${V1}/users/${a.id}/avatar`).set(other.bearer).redirects(0).expect(307);
      expect(theirs.headers.location).to.equal(mine.headers.location);
      expect(theirs.headers.location).to.equal(`${server.url}${await avatarOf(a)}`);
      await api.get(`${V1}/users/2147483000/avatar`).set(other.bearer).redirects(0).expect(404);
    });
  });

  describe('deleteUser — DELETE /users/{user_id}', () => {
    it('when a user with an uploaded avatar is deleted, then the file goes too', async () => {
      const admin = await signUpAdmin(api, server);
      const a = await signUp(api);
      await api
        .post(`${V1}/users/me/avatar`)
        .set(a.bearer)
        .attach('avatar_file', await image('png', 77, 33), 'own.png')
        .expect(200);
      const avatar = await avatarOf(a);
      await api.get(avatar).expect(200);
      await api.delete(`${V1}/users/${a.id}`).set(admin.bearer).expect(200);
      await api.get(avatar).expect(404);
    });
  });
});

describe('AIDeer credits and redeem codes', () => {
  let server: TestServer;
  let api: Client;
  let admin: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    admin = await signUpAdmin(api, server);
  });

  describe('redeemCredits — POST /users/me/credits', () => {
    it('when a user redeems a code, then the balance getMyCredits reports rises by its value with a record, and the code is used up', async () => {
      const code = uniqueName('c');
      const created = await api
        .post(`${V1}/codes`)
        .set(admin.bearer)
        .send({ redeem_code: code, value: 120 })
        .expect(200);
      expect(created.body).to.deep.equal({ redeem_code: code, value: 120 });
      const lookup = await api.get(`${V1}/codes/${code}`).expect(200);
      expect(lookup.body).to.deep.equal({ redeem_code: code, value: 120 });
      const a = await signUp(api);
      const res = await api
        .post(`${V1}/users/me/credits`)
        .set(a.bearer)
        .send({ redeem_code: code.toLowerCase() })
        .expect(200);
      expect(res.body).to.deep.equal({ message: 'Redeem 120 credits successfully' });
      const credits = bodyOf<Credits>(await api.get(`${V1}/users/me/credits`).set(a.bearer).expect(200));
      expect(credits.credits_left).to.equal(120);
      expect(credits.credit_records).to.have.length(1);
      expect(credits.credit_records[0]).to.include({
        user_id: a.id,
        amount: 120,
        description: `Add: Redeem credit, code: ${code.toUpperCase()}`,
      });
      const again = await api.post(`${V1}/users/me/credits`).set(a.bearer).send({ redeem_code: code }).expect(422);
      expect(again.body).to.deep.equal({ detail: `Invalid redeem code: ${code.toUpperCase()}` });
      expect((await api.get(`${V1}/codes/${code}`).expect(422)).body).to.deep.equal({
        detail: `Invalid redeem code: ${code.toUpperCase()}`,
      });
    });

    it('when 50 redemptions of one code run at once, then exactly one succeeds and the balance rises once', async () => {
      const code = uniqueName('race');
      await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value: 7 }).expect(200);
      const a = await signUp(api);
      const results = await Promise.all(
        Array.from({ length: 50 }, () => api.post(`${V1}/users/me/credits`).set(a.bearer).send({ redeem_code: code })),
      );
      expect(results.filter((r) => r.status === 200)).to.have.length(1);
      expect(results.filter((r) => r.status === 422)).to.have.length(49);
      const credits = bodyOf<Credits>(await api.get(`${V1}/users/me/credits`).set(a.bearer).expect(200));
      expect(credits.credits_left).to.equal(7);
      const sum = credits.credit_records.reduce((s: number, r: { amount: number }) => s + r.amount, 0);
      expect(credits.credits_left).to.equal(sum);
    });

    it('when an unknown code is redeemed, then 422 with the code upper-cased; no code at all is 422 too', async () => {
      const a = await signUp(api);
      expect(
        (await api.post(`${V1}/users/me/credits`).set(a.bearer).send({ redeem_code: 'nope-code' }).expect(422)).body,
      ).to.deep.equal({ detail: 'Invalid redeem code: NOPE-CODE' });
      await api.post(`${V1}/users/me/credits`).set(a.bearer).send({}).expect(422);
    });

    it('when the redeeming user is deleted, then the code stays used', async () => {
      const code = uniqueName('kept');
      await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value: 3 }).expect(200);
      const a = await signUp(api);
      await api.post(`${V1}/users/me/credits`).set(a.bearer).send({ redeem_code: code }).expect(200);
      await api.delete(`${V1}/users/${a.id}`).set(admin.bearer).expect(200);
      const b = await signUp(api);
      await api.post(`${V1}/users/me/credits`).set(b.bearer).send({ redeem_code: code }).expect(422);
    });
  });

  describe('createRedeemCode — POST /codes', () => {
    it('when an admin re-posts an unused code, then its value changes; a used code is 400', async () => {
      const code = uniqueName('re');
      await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value: 1 }).expect(200);
      await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code.toUpperCase(), value: 9 }).expect(200);
      expect(bodyOf<Ok<operations['readRedeemCode']>>(await api.get(`${V1}/codes/${code}`).expect(200)).value).to.equal(
        9,
      );
      const a = await signUp(api);
      await api.post(`${V1}/users/me/credits`).set(a.bearer).send({ redeem_code: code }).expect(200);
      const res = await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value: 5 }).expect(400);
      expect(res.body).to.deep.equal({ detail: 'Redeem code already used' });
    });

    it("when a non-admin creates a code, then 403; an admin's code of value 0 is 422", async () => {
      const a = await signUp(api);
      await api.post(`${V1}/codes`).set(a.bearer).send({ redeem_code: 'X1', value: 3 }).expect(403);
      await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: 'X1', value: 0 }).expect(422);
    });
  });

  describe('readRedeemCode — GET /codes/{code}', () => {
    it('when an unknown code is looked up, then 422 with the code upper-cased', async () => {
      expect((await api.get(`${V1}/codes/nope-code`).expect(422)).body).to.deep.equal({
        detail: 'Invalid redeem code: NOPE-CODE',
      });
    });

    it('when one address looks up codes faster than the limit, then 429 with Retry-After', async () => {
      const own = await startServer({ CODE_LOOKUP_RATE_LIMIT: '2' });
      try {
        const ownApi = client(own.url);
        await ownApi.get(`${V1}/codes/A`).expect(422);
        await ownApi.get(`${V1}/codes/B`).expect(422);
        const res = await ownApi.get(`${V1}/codes/C`).expect(429);
        expect(res.body).to.deep.equal({ detail: 'Too many requests' });
        expect(Number(res.headers['retry-after'])).to.be.within(1, 60);
      } finally {
        await own.close();
      }
    });
  });

  describe('deleteRedeemCode — DELETE /codes/{code}', () => {
    it('when an admin deletes a code, then it is gone (and deleting again still answers 200)', async () => {
      const code = uniqueName('del');
      await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value: 3 }).expect(200);
      const res = await api.delete(`${V1}/codes/${code}`).set(admin.bearer).expect(200);
      expect(res.body).to.deep.equal({ message: `Redeem code ${code} deleted successfully` });
      await api.get(`${V1}/codes/${code}`).expect(422);
      await api.delete(`${V1}/codes/${code}`).set(admin.bearer).expect(200);
    });

    it('when a non-admin deletes a code, then 403 and the code stays; an over-long code is 422', async () => {
      const a = await signUp(api);
      const code = uniqueName('keep');
      await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value: 3 }).expect(200);
      await api.delete(`${V1}/codes/${code}`).set(a.bearer).expect(403);
      expect((await api.get(`${V1}/codes/${code}`).expect(200)).body).to.deep.equal({ redeem_code: code, value: 3 });
      await api
        .delete(`${V1}/codes/${'x'.repeat(65)}`)
        .set(admin.bearer)
        .expect(422);
    });
  });
});

describe('AIDeer WeChat log-in and refresh', () => {
  let wechat: FakeWeChat;
  let server: TestServer;
  let api: Client;
  before(async () => {
    wechat = await startFakeWeChat();
    server = await startServer({
      WECHAT_APPID: 'wx-test-app',
      WECHAT_SECRET: 'wx-test-secret',
      WECHAT_API_BASE_URL: wechat.url,
    });
    api = client(server.url);
  });
  after(async () => {
    await server.close();
    await wechat.close();
  });

  async function wechatLogin(openid: string, sessionKey: string) {
    const code = uniqueName('code');
    wechat.sessions.set(code, { openid, session_key: sessionKey });
    return bodyOf<Ok<operations['wechatLogin']>>(
      await api.get(`${V1}/session/wechat/token`).query({ code }).expect(200),
    );
  }

  describe('wechatLogin — GET /session/wechat/token', () => {
    it('when the code is good, then a new user is registered and gets access and refresh tokens', async () => {
      const openid = uniqueName('openid');
      const tokens = await wechatLogin(openid, 'key-1');
      expect(tokens.token_type).to.equal('bearer');
      const me = bodyOf<UserRead>(
        await api.get(`${V1}/users/me`).set('Authorization', `Bearer ${tokens.access_token}`).expect(200),
      );
      expect(me.username).to.match(/^wechat_\d{8}$/);
      expect(me).to.include({ permission: 1, nickname: null, credits_left: 0 });
      const again = await wechatLogin(openid, 'key-2');
      const me2 = bodyOf<UserRead>(
        await api.get(`${V1}/users/me`).set('Authorization', `Bearer ${again.access_token}`).expect(200),
      );
      expect(me2.id).to.equal(me.id);
      const refreshClaims = jwt.decode(tokens.refresh_token, { json: true })!;
      expect(refreshClaims).to.include({ refresh: true, sub: String(me.id) });
      expect(refreshClaims.exp! - refreshClaims.iat!).to.equal(129600 * 60);
    });

    it('when WeChat says the code is invalid (40029), then 401 Invalid code', async () => {
      const res = await api.get(`${V1}/session/wechat/token`).query({ code: 'unknown-code' }).expect(401);
      expect(res.body).to.deep.equal({ detail: 'Invalid code' });
    });

    it('when WeChat answers another error code, then 500 WeChat server error: code, message', async () => {
      wechat.sessions.set('busy', { errcode: -1, errmsg: 'system busy' });
      const res = await api.get(`${V1}/session/wechat/token`).query({ code: 'busy' }).expect(500);
      expect(res.body).to.deep.equal({ detail: 'WeChat server error: -1, system busy' });
    });

    it('when WeChat answers an HTTP error, then 500 WeChat server error: status', async () => {
      wechat.sessions.set('down', { httpStatus: 503 });
      const res = await api.get(`${V1}/session/wechat/token`).query({ code: 'down' }).expect(500);
      expect(res.body).to.deep.equal({ detail: 'WeChat server error: 503' });
    });

    it('when the code is missing, then 422', async () => {
      await api.get(`${V1}/session/wechat/token`).expect(422);
    });

    it('when WeChat answers without an openid, then 500 rather than a user without one', async () => {
      wechat.sessions.set('half', { errcode: 0, errmsg: 'ok' });
      const res = await api.get(`${V1}/session/wechat/token`).query({ code: 'half' }).expect(500);
      expect(res.body).to.deep.equal({ detail: 'WeChat server error: unreadable response' });
    });

    it('when WeChat is not configured or cannot be reached, then 500 saying so', async () => {
      const shared = await sharedServer();
      const res = await client(shared.url).get(`${V1}/session/wechat/token`).query({ code: 'any' }).expect(500);
      expect(res.body).to.deep.equal({
        detail: 'WeChat server error: WECHAT_APPID and WECHAT_SECRET are not configured',
      });
      const nowhere = await startServer({
        WECHAT_APPID: 'a',
        WECHAT_SECRET: 'b',
        WECHAT_API_BASE_URL: 'http://127.0.0.1:9',
      });
      try {
        const down = await client(nowhere.url).get(`${V1}/session/wechat/token`).query({ code: 'any' }).expect(500);
        expect(down.body).to.deep.equal({ detail: 'WeChat server error: unreachable' });
      } finally {
        await nowhere.close();
      }
    });
  });

  describe('wechatRefresh — GET /session/wechat/refresh', () => {
    it('when the session is alive, then refresh answers a new access token and the same refresh token, signed with the newest session key', async () => {
      const openid = uniqueName('openid');
      await wechatLogin(openid, 'old-key');
      const tokens = await wechatLogin(openid, 'new-key'); // the stored key must follow the latest log-in
      const res = bodyOf<Ok<operations['wechatRefresh']>>(
        await api
          .get(`${V1}/session/wechat/refresh`)
          .set('Authorization', `Bearer ${tokens.refresh_token}`)
          .expect(200),
      );
      expect(res.refresh_token).to.equal(tokens.refresh_token);
      expect(res.token_type).to.equal('bearer');
      await api.get(`${V1}/users/me`).set('Authorization', `Bearer ${res.access_token}`).expect(200);
      const check = wechat.checks[wechat.checks.length - 1];
      expect(check.openid).to.equal(openid);
      expect(check.access_token).to.match(/^server-token-\d+$/);
    });

    it('when the server token is cached, then it is reused, and refetched once when WeChat revokes it', async () => {
      const tokens = await wechatLogin(uniqueName('openid'), 'k');
      await api.get(`${V1}/session/wechat/refresh`).set('Authorization', `Bearer ${tokens.refresh_token}`).expect(200);
      const issued = wechat.tokensIssued;
      await api.get(`${V1}/session/wechat/refresh`).set('Authorization', `Bearer ${tokens.refresh_token}`).expect(200);
      expect(wechat.tokensIssued).to.equal(issued);
      wechat.revokeTokenOnce = true;
      await api.get(`${V1}/session/wechat/refresh`).set('Authorization', `Bearer ${tokens.refresh_token}`).expect(200);
      expect(wechat.tokensIssued).to.equal(issued + 1);
    });

    it('when WeChat says the session expired (87009), then 401 Wechat session expired', async () => {
      const openid = uniqueName('openid');
      const tokens = await wechatLogin(openid, 'k');
      wechat.checkErrcode.set(openid, 87009);
      const res = await api
        .get(`${V1}/session/wechat/refresh`)
        .set('Authorization', `Bearer ${tokens.refresh_token}`)
        .expect(401);
      expect(res.body).to.deep.equal({ detail: 'Wechat session expired' });
    });

    it('when checksession answers another error, then 500', async () => {
      const openid = uniqueName('openid');
      const tokens = await wechatLogin(openid, 'k');
      wechat.checkErrcode.set(openid, 45011);
      const res = await api
        .get(`${V1}/session/wechat/refresh`)
        .set('Authorization', `Bearer ${tokens.refresh_token}`)
        .expect(500);
      expect(bodyOf<Detail>(res).detail).to.match(/^WeChat server error: 45011/);
    });

    it('when an access token is sent to refresh, then 400 Refresh token required; no token is 401', async () => {
      const tokens = await wechatLogin(uniqueName('openid'), 'k');
      const res = await api
        .get(`${V1}/session/wechat/refresh`)
        .set('Authorization', `Bearer ${tokens.access_token}`)
        .expect(400);
      expect(res.body).to.deep.equal({ detail: 'Could not validate credentials: Refresh token required' });
      await api.get(`${V1}/session/wechat/refresh`).expect(401);
    });

    it('when a password user presents a (minted) refresh token, then 401 Wechat session expired', async () => {
      const user = await signUp(api);
      const res = await api
        .get(`${V1}/session/wechat/refresh`)
        .set('Authorization', `Bearer ${mintToken({ sub: String(user.id), refresh: true })}`)
        .expect(401);
      expect(res.body).to.deep.equal({ detail: 'Wechat session expired' });
    });
  });
});

describe('AIDeer utils', () => {
  it('when DEBUG is off, then initDatabase, createAdmin and dropDatabase (GET /utils/init, /utils/admin, /utils/drop) are 404', async () => {
    const server = await sharedServer();
    const api = client(server.url);
    for (const name of ['init', 'admin', 'drop'])
      expect((await api.get(`${V1}/utils/${name}`).expect(404)).body).to.deep.equal({ detail: 'Not Found' });
  });

  it('when DEBUG is on, then initDatabase is idempotent, createAdmin creates the configured admin once, and dropDatabase empties every AIDeer table', async () => {
    const server = await startServer({ DEBUG: 'true', ADMIN_USER: 'root-admin', ADMIN_PASSWD: 'admin-pass' });
    try {
      const api = client(server.url);
      expect((await api.get(`${V1}/utils/init`).expect(200)).body).to.deep.equal({ message: 'Database initialized' });
      await api.get(`${V1}/utils/init`).expect(200);
      const admin = await api.get(`${V1}/utils/admin`).expect(200);
      expect(admin.body).to.include({ username: 'root-admin', permission: 2 });
      expect((await api.get(`${V1}/utils/admin`).expect(400)).body).to.deep.equal({
        detail: 'Admin user already exists',
      });
      const token = await logIn(api, 'root-admin', 'admin-pass');
      await api
        .post(`${V1}/codes`)
        .set('Authorization', `Bearer ${token}`)
        .send({ redeem_code: 'DROPME', value: 1 })
        .expect(200);
      expect((await api.get(`${V1}/utils/drop`).expect(200)).body).to.deep.equal({ message: 'Database dropped' });
      // Ids are not reused after a drop: a token of a dropped user never becomes someone else's.
      await api.get(`${V1}/utils/admin`).expect(200);
      await api.get(`${V1}/users/me`).set('Authorization', `Bearer ${token}`).expect(401);
      await api.get(`${V1}/utils/drop`).expect(200);
      for (const table of ['aideer_users', 'aideer_credit_records', 'aideer_redeem_codes', 'aideer_kv']) {
        expect(await server.db(table).count({ n: '*' }).first(), table).to.deep.equal({ n: 0 });
      }
      expect(await server.db('oneapi_users').count({ n: '*' }).first()).to.have.property('n');
    } finally {
      await server.close();
    }
  });

  it('when DEBUG is on but no admin credentials are set, then createAdmin — GET /utils/admin answers 500 Admin credentials not set', async () => {
    const server = await startServer({ DEBUG: 'true' });
    try {
      const res = await client(server.url).get(`${V1}/utils/admin`).expect(500);
      expect(res.body).to.deep.equal({ detail: 'Admin credentials not set' });
    } finally {
      await server.close();
    }
  });

  it('when ADMIN_USER and ADMIN_PASSWD are set outside DEBUG, then the admin is created at start-up once', async () => {
    const server = await startServer({ ADMIN_USER: 'boot-admin', ADMIN_PASSWD: 'boot-pass' });
    try {
      expect(await server.app.aideer!.ensureAdmin()).to.equal('created');
      expect(await server.app.aideer!.ensureAdmin()).to.equal('exists');
      const token = await logIn(client(server.url), 'boot-admin', 'boot-pass');
      const me = await client(server.url).get(`${V1}/users/me`).set('Authorization', `Bearer ${token}`).expect(200);
      expect(bodyOf<UserRead>(me).permission).to.equal(2);
    } finally {
      await server.close();
    }
  });
});
