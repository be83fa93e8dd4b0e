// AIDeer likes (decision A13): the original's /users/me/likes endpoints, with no visibility check.
import crypto from 'node:crypto';
import { expect } from 'chai';
import { bodyOf, client, type Client, type Ok } from './helpers/http.ts';
import type { components, operations } from '../generated/aideer.ts';
import { sharedServer, type TestServer } from './helpers/server.ts';
import { V1, signUp, signUpAdmin, type AideerUser } from './helpers/aideer.ts';

describe('AIDeer likes', () => {
  let server: TestServer;
  let api: Client;
  let owner: AideerUser;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    owner = await signUp(api);
  });

  async function privatePreset(user = owner): Promise<string> {
    return bodyOf<Ok<operations['createPreset']>>(
      await api.post(`${V1}/presets`).set(user.bearer).send({ title: 'Liked', messages: [] }).expect(200),
    ).id;
  }

  async function privateChat(user = owner): Promise<string> {
    return bodyOf<Ok<operations['createChat']>>(
      await api
        .post(`${V1}/chats`)
        .set(user.bearer)
        .send({ preset_id: await privatePreset(user), title: 'Liked', messages: [] })
        .expect(200),
    ).id;
  }

  const likes = async (user: AideerUser) =>
    bodyOf<Ok<operations['readMyLikes']>>(await api.get(`${V1}/users/me/likes`).set(user.bearer).expect(200));

  describe('readMyLikes — GET /users/me/likes', () => {
    it('when a user has liked nothing, then both lists are empty', async () => {
      expect(await likes(await signUp(api))).to.deep.equal({ preset_ids: [], chat_ids: [] });
    });

    it('when a user has several likes, then each list is sorted by id', async () => {
      const fan = await signUp(api);
      const presets = [await privatePreset(), await privatePreset(), await privatePreset()];
      const chats = [await privateChat(), await privateChat(), await privateChat()];
      for (const id of presets) await api.post(`${V1}/users/me/likes/preset/${id}`).set(fan.bearer).expect(200);
      for (const id of chats) await api.post(`${V1}/users/me/likes/chat/${id}`).set(fan.bearer).expect(200);
      expect(await likes(fan)).to.deep.equal({ preset_ids: [...presets].sort(), chat_ids: [...chats].sort() });
    });
  });

  for (const [kind, like, unlike] of [
    ['preset', 'likePreset', 'unlikePreset'],
    ['chat', 'likeChat', 'unlikeChat'],
  ] as const) {
    const make = kind === 'preset' ? privatePreset : privateChat;
    const listed = kind === 'preset' ? 'preset_ids' : 'chat_ids';

    describe(`${like} — POST /users/me/likes/${kind}/{${kind}_id}`, () => {
      it(`when a user likes another user's private ${kind}, then 200 with the record (no visibility check), and it is listed`, async () => {
        const fan = await signUp(api);
        const id = await make();
        const res = await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer).expect(200);
        expect(res.body).to.deep.equal({ user_id: fan.id, [`${kind}_id`]: id });
        expect((await likes(fan))[listed]).to.deep.equal([id]);
        expect((await likes(owner))[listed]).to.not.include(id);
      });

      it(`when a ${kind} is liked twice, then 400 Like already exists, also with the id in upper case`, async () => {
        const fan = await signUp(api);
        const id = await make();
        const first = await api.post(`${V1}/users/me/likes/${kind}/${id.toUpperCase()}`).set(fan.bearer).expect(200);
        expect(first.body).to.deep.equal({ user_id: fan.id, [`${kind}_id`]: id });
        const res = await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer).expect(400);
        expect(res.body).to.deep.equal({ detail: 'Like already exists' });
        expect((await likes(fan))[listed]).to.deep.equal([id]);
      });

      it(`when a ${kind} that does not exist is liked, then 404 ${kind === 'preset' ? 'Preset' : 'Chat'} not found`, async () => {
        const res = await api.post(`${V1}/users/me/likes/${kind}/${crypto.randomUUID()}`).set(owner.bearer).expect(404);
        expect(res.body).to.deep.equal({ detail: `${kind === 'preset' ? 'Preset' : 'Chat'} not found` });
      });

      it(`when one ${kind} is liked by one user 10 times at once, then exactly one like is recorded`, async () => {
        const fan = await signUp(api);
        const id = await make();
        const statuses = await Promise.all(
          Array.from(
            { length: 10 },
            async () => (await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer)).status,
          ),
        );
        expect(statuses.filter((s) => s === 200)).to.have.length(1);
        expect(statuses.filter((s) => s === 400)).to.have.length(9);
        expect((await likes(fan))[listed]).to.deep.equal([id]);
      });

      it(`when a ${kind} id is sent as urn:uuid:<id> (also to ${unlike}), then 422 uuid_parsing and no like changes`, async () => {
        const fan = await signUp(api);
        const id = await make();
        await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer).expect(200);
        for (const req of [
          api.post(`${V1}/users/me/likes/${kind}/urn:uuid:${id}`),
          api.delete(`${V1}/users/me/likes/${kind}/urn:uuid:${id}`),
        ]) {
          const res = bodyOf<components['schemas']['HTTPValidationError']>(await req.set(fan.bearer).expect(422));
          expect(res.detail[0]).to.include({ type: 'uuid_parsing', input: `urn:uuid:${id}` });
          expect(res.detail[0].loc).to.deep.equal(['path', `${kind}_id`]);
        }
        expect((await likes(fan))[listed]).to.deep.equal([id]);
      });
    });

    describe(`${unlike} — DELETE /users/me/likes/${kind}/{${kind}_id}`, () => {
      it(`when a ${kind} like is removed, then 200 Like deleted successfully; again, 404 Like not found`, async () => {
        const fan = await signUp(api);
        const id = await make();
        await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer).expect(200);
        await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(owner.bearer).expect(200);
        const res = await api.delete(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer).expect(200);
        expect(res.body).to.deep.equal({ message: 'Like deleted successfully' });
        expect((await likes(fan))[listed]).to.deep.equal([]);
        expect((await likes(owner))[listed]).to.include(id);
        const again = await api.delete(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer).expect(404);
        expect(again.body).to.deep.equal({ detail: 'Like not found' });
      });

      it(`when a ${kind} like is removed with the id in upper case, then it is the same like`, async () => {
        const fan = await signUp(api);
        const id = await make();
        await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(fan.bearer).expect(200);
        await api.delete(`${V1}/users/me/likes/${kind}/${id.toUpperCase()}`).set(fan.bearer).expect(200);
        expect((await likes(fan))[listed]).to.deep.equal([]);
      });

      it(`when a like of a ${kind} that does not exist is removed, then 404 Like not found`, async () => {
        const res = await api
          .delete(`${V1}/users/me/likes/${kind}/${crypto.randomUUID()}`)
          .set(owner.bearer)
          .expect(404);
        expect(res.body).to.deep.equal({ detail: 'Like not found' });
      });
    });
  }

  // As the original, liking checks neither owner nor visibility.
  for (const [kind, visibilities] of [
    ['preset', ['private', 'unlisted', 'public']],
    ['chat', ['private', 'shared']],
  ] as const) {
    for (const visibility of visibilities) {
      for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
        const status = caller === 'anonymous' ? 401 : 200;
        it(`when the ${caller} likes and unlikes the owner's ${visibility} ${kind} and reads the likes (readMyLikes), then ${status}`, async () => {
          const admin = await signUpAdmin(api, server);
          const user = caller === 'owner' ? owner : caller === 'admin' ? admin : await signUp(api);
          const preset = await privatePreset();
          if (kind === 'preset' && visibility !== 'private') {
            await api
              .put(`${V1}/presets/${preset}`)
              .set(admin.bearer)
              .send({ title: 'Liked', visibility, messages: [] })
              .expect(200);
          }
          const id =
            kind === 'preset'
              ? preset
              : bodyOf<Ok<operations['createChat']>>(
                  await api
                    .post(`${V1}/chats`)
                    .set(owner.bearer)
                    .send({ preset_id: preset, title: 'Liked', visibility, messages: [] })
                    .expect(200),
                ).id;
          const headers = caller === 'anonymous' ? {} : user.bearer;
          await api.post(`${V1}/users/me/likes/${kind}/${id}`).set(headers).expect(status);
          if (status === 200) expect((await likes(user))[kind === 'preset' ? 'preset_ids' : 'chat_ids']).to.include(id);
          await api.delete(`${V1}/users/me/likes/${kind}/${id}`).set(headers).expect(status);
          await api.get(`${V1}/users/me/likes`).set(headers).expect(status);
        });
      }
    }
  }

  it('when a liked chat is deleted (deleteChat), then its like goes with it', async () => {
    const fan = await signUp(api);
    const id = await privateChat();
    await api.post(`${V1}/users/me/likes/chat/${id}`).set(fan.bearer).expect(200);
    await api.delete(`${V1}/chats/${id}`).set(owner.bearer).expect(200);
    expect((await likes(fan)).chat_ids).to.deep.equal([]);
  });
});
