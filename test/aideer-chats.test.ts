// AIDeer chats and presets: the original's access rules for every caller and visibility, full
// replacement, fork on read of shared chats, parameters and their defaults, messages kept in order,
// paging and ordering, and the cascades of deleting a preset or a user (decisions A3, A4, A14,
// A15).
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { ChatStore } from '../src/aideer/store/chats.ts';
import { PresetStore } from '../src/aideer/store/presets.ts';
import { keptTitle } from '../src/aideer/domain/chats.ts';
import { uniqueViolation } from '../src/dbErrors.ts';
import { bodyOf, client, type Client } from './helpers/http.ts';
import type { components } from '../generated/aideer.ts';
import { sharedServer, startServer, usingPostgres, type TestServer } from './helpers/server.ts';
import { V1, signUp, signUpAdmin, uniqueName, type AideerUser, type Detail, type Invalid } from './helpers/aideer.ts';

type PresetRead = components['schemas']['PresetRead'];
type ChatRead = components['schemas']['ChatRead'];
type MessageRead = components['schemas']['MessageRead'];
type Visibility = 'private' | 'unlisted' | 'public';
type Caller = 'anonymous' | 'owner' | 'other' | 'admin';

const SYSTEM = { role: 'system', type: 'text', content: 'You are terse.', visibility: false };

interface People {
  owner: AideerUser;
  other: AideerUser;
  admin: AideerUser;
}

async function people(api: Client, server: TestServer): Promise<People> {
  return { owner: await signUp(api), other: await signUp(api), admin: await signUpAdmin(api, server) };
}

function headersOf(p: People, caller: Caller): Record<string, string> {
  return caller === 'anonymous' ? {} : p[caller].bearer;
}

/** A preset of `owner`; a public one is made public by an admin, since only admins may. */
async function makePreset(
  api: Client,
  owner: AideerUser,
  visibility: Visibility,
  admin?: AideerUser,
  fields: Record<string, unknown> = {},
): Promise<PresetRead> {
  const body = {
    title: uniqueName('preset').slice(0, 50),
    messages: [SYSTEM],
    ...fields,
    visibility: visibility === 'public' ? 'private' : visibility,
  };
  const created = bodyOf<PresetRead>(await api.post(`${V1}/presets`).set(owner.bearer).send(body).expect(200));
  if (visibility !== 'public') return created;
  const made = bodyOf<PresetRead>(
    await api
      .put(`${V1}/presets/${created.id}`)
      .set(admin!.bearer)
      .send({ ...body, visibility: 'public' })
      .expect(200),
  );
  expect(made.owner_id).to.equal(owner.id);
  return made;
}

async function makeChat(
  api: Client,
  owner: AideerUser,
  presetId: string,
  visibility: 'private' | 'shared' = 'private',
  messages: object[] = [{ role: 'user', type: 'text', content: 'Hello' }],
): Promise<ChatRead> {
  return bodyOf<ChatRead>(
    await api
      .post(`${V1}/chats`)
      .set(owner.bearer)
      .send({ preset_id: presetId, title: uniqueName('chat').slice(0, 50), visibility, messages })
      .expect(200),
  );
}

const ids = (rows: { id: string }[]) => rows.map((r) => r.id).sort();

/** Titles of the newest presets or chats the user sees: a row just stored would be among them. */
async function newestTitles(api: Client, user: AideerUser, kind: 'presets' | 'chats'): Promise<string[]> {
  const res = await api
    .get(`${V1}/${kind}`)
    .set(user.bearer)
    .query({ order_by: 'create_time', order: 'desc', limit: 100 })
    .expect(200);
  return bodyOf<(PresetRead | ChatRead)[]>(res).map((row: { title: string }) => row.title);
}

describe('AIDeer presets: access for each caller and visibility', () => {
  let server: TestServer;
  let api: Client;
  let p: People;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    p = await people(api, server);
  });

  const read: Record<Caller, Record<Visibility, number>> = {
    anonymous: { private: 401, unlisted: 401, public: 401 },
    owner: { private: 200, unlisted: 200, public: 200 },
    other: { private: 403, unlisted: 200, public: 200 },
    admin: { private: 403, unlisted: 200, public: 200 },
  };
  // Each PUT keeps the preset's visibility: changing it to public is tested on its own.
  const update: Record<Caller, Record<Visibility, [number, string?]>> = {
    anonymous: { private: [401], unlisted: [401], public: [401] },
    owner: {
      private: [200],
      unlisted: [200],
      public: [403, 'Insufficient permissions: You cannot update public presets'],
    },
    other: {
      private: [403, "Insufficient permissions: You cannot update other users' presets"],
      unlisted: [403, "Insufficient permissions: You cannot update other users' presets"],
      public: [403, "Insufficient permissions: You cannot update other users' presets"],
    },
    admin: { private: [200], unlisted: [200], public: [200] },
  };
  const remove: Record<Caller, Record<Visibility, [number, string?]>> = {
    anonymous: { private: [401], unlisted: [401], public: [401] },
    owner: {
      private: [200],
      unlisted: [200],
      public: [403, 'Insufficient permissions: You cannot delete public presets'],
    },
    other: {
      private: [403, "Insufficient permissions: You cannot delete other users' presets"],
      unlisted: [403, "Insufficient permissions: You cannot delete other users' presets"],
      public: [403, "Insufficient permissions: You cannot delete other users' presets"],
    },
    admin: { private: [200], unlisted: [200], public: [200] },
  };

  describe('readPreset — GET /presets/{preset_id}', () => {
    for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
      for (const visibility of ['private', 'unlisted', 'public'] as const) {
        it(`when the ${caller} reads a ${visibility} preset, then ${read[caller][visibility]}`, async () => {
          const preset = await makePreset(api, p.owner, visibility, p.admin);
          const res = await api
            .get(`${V1}/presets/${preset.id}`)
            .set(headersOf(p, caller))
            .expect(read[caller][visibility]);
          if (res.status === 200) expect(res.body).to.deep.equal(preset);
          if (res.status === 403)
            expect(res.body).to.deep.equal({
              detail: 'Insufficient permissions: You do not have access to this preset',
            });
        });
      }
    }
  });

  describe('updatePreset — PUT /presets/{preset_id}', () => {
    for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
      for (const visibility of ['private', 'unlisted', 'public'] as const) {
        const [updateStatus, updateDetail] = update[caller][visibility];
        it(`when the ${caller} replaces a ${visibility} preset, then ${updateStatus}${updateDetail ? ` ${updateDetail}` : ''}`, async () => {
          const preset = await makePreset(api, p.owner, visibility, p.admin);
          const body = { title: 'Replaced', visibility, messages: [] };
          const res = await api
            .put(`${V1}/presets/${preset.id}`)
            .set(headersOf(p, caller))
            .send(body)
            .expect(updateStatus);
          if (updateDetail) expect(res.body).to.deep.equal({ detail: updateDetail });
          const now = await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(200);
          if (updateStatus === 200) {
            expect(res.body).to.include({ id: preset.id, owner_id: p.owner.id, title: 'Replaced', visibility });
            expect(now.body).to.deep.equal(res.body);
          } else expect(now.body).to.deep.equal(preset);
        });
      }
    }

    it('when the owner of a private preset sets it public, then 403 and it stays private; an admin may', async () => {
      const preset = await makePreset(api, p.owner, 'private');
      const body = { title: preset.title, visibility: 'public', messages: [] };
      const res = await api.put(`${V1}/presets/${preset.id}`).set(p.owner.bearer).send(body).expect(403);
      expect(res.body).to.deep.equal({
        detail: 'Insufficient permissions: You cannot set preset visibility to public',
      });
      expect(
        bodyOf<PresetRead>(await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(200)).visibility,
      ).to.equal('private');
      await api.put(`${V1}/presets/${preset.id}`).set(p.admin.bearer).send(body).expect(200);
    });

    it("when a non-owner replaces another user's public preset, then the check for the owner comes first", async () => {
      const preset = await makePreset(api, p.admin, 'public', p.admin);
      const res = await api
        .put(`${V1}/presets/${preset.id}`)
        .set(p.other.bearer)
        .send({ title: 'x', visibility: 'public', messages: [] })
        .expect(403);
      expect(bodyOf<Detail>(res).detail).to.equal("Insufficient permissions: You cannot update other users' presets");
    });
  });

  describe('deletePreset — DELETE /presets/{preset_id}', () => {
    for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
      for (const visibility of ['private', 'unlisted', 'public'] as const) {
        const [deleteStatus, deleteDetail] = remove[caller][visibility];
        it(`when the ${caller} deletes a ${visibility} preset, then ${deleteStatus}${deleteDetail ? ` ${deleteDetail}` : ''}`, async () => {
          const preset = await makePreset(api, p.owner, visibility, p.admin);
          const res = await api.delete(`${V1}/presets/${preset.id}`).set(headersOf(p, caller)).expect(deleteStatus);
          if (deleteDetail) expect(res.body).to.deep.equal({ detail: deleteDetail });
          if (deleteStatus === 200) {
            expect(res.body).to.deep.equal({ message: 'Preset deleted successfully' });
            await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(404);
          } else await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(200);
        });
      }
    }
  });

  describe('createPreset — POST /presets', () => {
    for (const [caller, visibility, status] of [
      ['anonymous', 'private', 401],
      ['owner', 'private', 200],
      ['owner', 'unlisted', 200],
      ['owner', 'public', 403],
      ['admin', 'public', 200],
    ] as const) {
      it(`when the ${caller === 'owner' ? 'user' : caller} creates a ${visibility} preset, then ${status}`, async () => {
        const res = await api
          .post(`${V1}/presets`)
          .set(headersOf(p, caller))
          .send({ title: 'New', visibility, messages: [] })
          .expect(status);
        if (status === 403)
          expect(res.body).to.deep.equal({ detail: 'Insufficient permissions: You cannot create public presets' });
        if (status === 200) {
          expect(res.body).to.include({
            title: 'New',
            visibility,
            owner_id: p[caller].id,
            description: null,
            type: 'chat_generation',
          });
          await api
            .get(`${V1}/presets/${bodyOf<PresetRead>(res).id}`)
            .set(p[caller].bearer)
            .expect(200);
        }
      });
    }
  });

  for (const [op, operationId] of [
    ['read', 'readPreset'],
    ['replace', 'updatePreset'],
    ['delete', 'deletePreset'],
  ] as const) {
    it(`when a preset that does not exist is ${op === 'read' ? 'read' : op === 'replace' ? 'replaced' : 'deleted'} (${operationId}), then 404 Preset not found`, async () => {
      const id = crypto.randomUUID();
      const req =
        op === 'read'
          ? api.get(`${V1}/presets/${id}`)
          : op === 'replace'
            ? api.put(`${V1}/presets/${id}`).send({ title: 'x', messages: [] })
            : api.delete(`${V1}/presets/${id}`);
      const res = await req.set(p.admin.bearer).expect(404);
      expect(res.body).to.deep.equal({ detail: 'Preset not found' });
    });
  }

  it('when a preset id is sent in upper case, then readPreset, updatePreset and deletePreset take it for the same preset', async () => {
    const preset = await makePreset(api, p.owner, 'private');
    expect(
      bodyOf<PresetRead>(await api.get(`${V1}/presets/${preset.id.toUpperCase()}`).set(p.owner.bearer).expect(200)).id,
    ).to.equal(preset.id);
    const replaced = await api
      .put(`${V1}/presets/${preset.id.toUpperCase()}`)
      .set(p.owner.bearer)
      .send({ title: 'Upper', messages: [] })
      .expect(200);
    expect(replaced.body).to.include({ id: preset.id, title: 'Upper' });
    await api.delete(`${V1}/presets/${preset.id.toUpperCase()}`).set(p.owner.bearer).expect(200);
    await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(404);
  });

  it('when a preset id is sent as urn:uuid:<id> to readPreset or deletePreset, then 422 uuid_parsing and the preset is untouched', async () => {
    const preset = await makePreset(api, p.owner, 'private');
    for (const req of [
      api.get(`${V1}/presets/urn:uuid:${preset.id}`),
      api.delete(`${V1}/presets/urn:uuid:${preset.id}`),
    ]) {
      const res = bodyOf<Invalid>(await req.set(p.owner.bearer).expect(422));
      expect(res.detail[0]).to.include({ type: 'uuid_parsing', input: `urn:uuid:${preset.id}` });
      expect(res.detail[0].loc).to.deep.equal(['path', 'preset_id']);
    }
    expect((await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(200)).body).to.deep.equal(preset);
  });
});

describe('AIDeer presets: parameters (createPreset — POST /presets) and full replacement (updatePreset — PUT /presets/{preset_id})', () => {
  let server: TestServer;
  let api: Client;
  let user: AideerUser;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    user = await signUp(api);
  });

  const DEFAULTS = {
    model: 'deepseek-chat',
    max_tokens: 1500,
    top_p: 0.5,
    top_k: null,
    repetition_penalty: 1.1,
    frequency_penalty: 0,
    presence_penalty: 0,
    temperature: 0.85,
  };

  it('when parameters are omitted or empty, then every default is stored, with one seed shared by the whole process', async () => {
    const omitted = bodyOf<PresetRead>(
      await api.post(`${V1}/presets`).set(user.bearer).send({ title: 'No parameters', messages: [] }).expect(200),
    );
    const empty = await api
      .post(`${V1}/presets`)
      .set(user.bearer)
      .send({ title: 'Empty parameters', messages: [], parameters: {} })
      .expect(200);
    const { seed, ...rest } = omitted.parameters;
    expect(rest).to.deep.equal(DEFAULTS);
    expect(seed).to.be.a('number').within(0, Number.MAX_SAFE_INTEGER);
    expect(bodyOf<PresetRead>(empty).parameters).to.deep.equal(omitted.parameters);
    const read = await api.get(`${V1}/presets/${omitted.id}`).set(user.bearer).expect(200);
    expect(bodyOf<PresetRead>(read).parameters).to.deep.equal(omitted.parameters);
  });

  it('when some parameters are given, then they are kept, the rest take their defaults and unknown ones are dropped', async () => {
    const parameters = {
      model: 'qwen-max',
      seed: 42,
      max_tokens: 2000,
      top_p: 0.99,
      top_k: 100,
      temperature: 0,
      frequency_penalty: -2,
      presence_penalty: 2,
    };
    const res = await api
      .post(`${V1}/presets`)
      .set(user.bearer)
      .send({ title: 'Tuned', messages: [], parameters: { ...parameters, unknown: 'x' } })
      .expect(200);
    expect(bodyOf<PresetRead>(res).parameters).to.deep.equal({ ...DEFAULTS, ...parameters });
  });

  const outOfBounds: [string, Record<string, unknown>, string][] = [
    ['max_tokens 0', { max_tokens: 0 }, 'greater_than_equal'],
    ['max_tokens 2001', { max_tokens: 2001 }, 'less_than_equal'],
    ['top_p 0', { top_p: 0 }, 'greater_than'],
    ['top_p 1', { top_p: 1 }, 'less_than'],
    ['top_k 0', { top_k: 0 }, 'greater_than_equal'],
    ['top_k 101', { top_k: 101 }, 'less_than_equal'],
    ['temperature 2', { temperature: 2 }, 'less_than'],
    ['temperature -0.1', { temperature: -0.1 }, 'greater_than_equal'],
    ['repetition_penalty -1', { repetition_penalty: -1 }, 'greater_than_equal'],
    ['frequency_penalty 2.5', { frequency_penalty: 2.5 }, 'less_than_equal'],
    ['presence_penalty -3', { presence_penalty: -3 }, 'greater_than_equal'],
    ['seed -1', { seed: -1 }, 'greater_than_equal'],
    ['model qwen-max-1201 (no credit multiplier, A14)', { model: 'qwen-max-1201' }, 'enum'],
    ['model qwen-max-longcontext (no credit multiplier, A14)', { model: 'qwen-max-longcontext' }, 'enum'],
  ];
  for (const [what, parameters, type] of outOfBounds) {
    it(`when a preset is saved with ${what}, then 422 ${type} and nothing is stored`, async () => {
      const title = uniqueName('bad');
      const res = bodyOf<Invalid>(
        await api.post(`${V1}/presets`).set(user.bearer).send({ title, messages: [], parameters }).expect(422),
      );
      const field = Object.keys(parameters)[0];
      expect(res.detail[0]).to.include({ type });
      expect(res.detail[0].loc).to.deep.equal(['body', 'parameters', field]);
      expect(await newestTitles(api, user, 'presets')).to.not.include(title);
    });
  }

  it("when a preset body breaks the schema, then 422 with FastAPI's items", async () => {
    const missing = await api.post(`${V1}/presets`).set(user.bearer).send({ messages: [] }).expect(422);
    expect(bodyOf<Invalid>(missing).detail[0]).to.include({ type: 'missing', msg: 'Field required' });
    expect(bodyOf<Invalid>(missing).detail[0].loc).to.deep.equal(['body', 'title']);
    const long = await api
      .post(`${V1}/presets`)
      .set(user.bearer)
      .send({ title: 'x'.repeat(51), messages: [] })
      .expect(422);
    expect(bodyOf<Invalid>(long).detail[0]).to.include({ type: 'string_too_long' });
    const badType = await api
      .post(`${V1}/presets`)
      .set(user.bearer)
      .send({ title: 'x', type: 'video', messages: [] })
      .expect(422);
    expect(bodyOf<Invalid>(badType).detail[0].loc).to.deep.equal(['body', 'type']);
    const preset = await makePreset(api, user, 'private');
    const put = await api
      .put(`${V1}/presets/${preset.id}`)
      .set(user.bearer)
      .send({ title: 'x', messages: [{ role: 'robot', type: 'text', content: 'hi' }] })
      .expect(422);
    expect(bodyOf<Invalid>(put).detail[0].loc).to.deep.equal(['body', 'messages', 0, 'role']);
  });

  it('when a preset is replaced, then every omitted field takes its default and the messages are replaced', async () => {
    const preset = await makePreset(api, user, 'unlisted', undefined, {
      description: 'Described',
      type: 'image_generation',
      parameters: { model: 'qwen-plus', max_tokens: 10, seed: 7 },
      messages: [SYSTEM, { role: 'user', type: 'text', content: 'one' }],
    });
    await sleep(5);
    const replaced = bodyOf<PresetRead>(
      await api
        .put(`${V1}/presets/${preset.id}`)
        .set(user.bearer)
        .send({ title: 'Bare', messages: [{ role: 'assistant', type: 'image', content: 'https://example.com/a.png' }] })
        .expect(200),
    );
    expect(replaced).to.include({
      id: preset.id,
      title: 'Bare',
      description: null,
      type: 'chat_generation',
      visibility: 'private',
      owner_id: user.id,
      create_time: preset.create_time,
    });
    expect(replaced.parameters).to.deep.equal({ ...DEFAULTS, seed: replaced.parameters.seed });
    expect(replaced.messages).to.have.length(1);
    expect(replaced.messages[0]).to.include({
      role: 'assistant',
      type: 'image',
      content: 'https://example.com/a.png',
      visibility: true,
    });
    expect(Date.parse(replaced.update_time)).to.be.greaterThan(Date.parse(preset.update_time));
    expect(
      bodyOf<PresetRead>(await api.get(`${V1}/presets/${preset.id}`).set(user.bearer).expect(200)).messages,
    ).to.deep.equal(replaced.messages);
  });
});

describe('AIDeer chats: access for each caller and visibility', () => {
  let server: TestServer;
  let api: Client;
  let p: People;
  let preset: PresetRead;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    p = await people(api, server);
    preset = await makePreset(api, p.owner, 'private');
  });

  const MESSAGES = [
    { role: 'user', type: 'text', content: 'Plan a trip.', create_time: '2024-05-09T10:29:30.123Z' },
    {
      role: 'assistant',
      type: 'text',
      content: 'Day 1: the lake.',
      visibility: false,
      create_time: '2024-05-09T10:29:41.508Z',
    },
  ];

  describe('readChat — GET /chats/{chat_id}', () => {
    for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
      for (const visibility of ['private', 'shared'] as const) {
        const readStatus = caller === 'anonymous' ? 401 : caller === 'owner' || visibility === 'shared' ? 200 : 403;
        const fork = readStatus === 200 && caller !== 'owner';
        it(`when the ${caller} reads a ${visibility} chat, then ${readStatus}${fork ? ' with a new private copy of their own' : ''}`, async () => {
          const chat = await makeChat(api, p.owner, preset.id, visibility, MESSAGES);
          const res = await api.get(`${V1}/chats/${chat.id}`).set(headersOf(p, caller)).expect(readStatus);
          if (readStatus === 403)
            expect(res.body).to.deep.equal({ detail: 'Insufficient permissions: You do not have access to this chat' });
          if (readStatus === 200 && !fork) expect(res.body).to.deep.equal(chat);
          if (fork) {
            const reader = p[caller as 'other' | 'admin'];
            const copy = bodyOf<ChatRead>(res);
            expect(copy.id).to.not.equal(chat.id);
            expect(copy).to.include({
              owner_id: reader.id,
              visibility: 'private',
              title: chat.title,
              preset_id: preset.id,
            });
            expect(copy.messages).to.deep.equal(chat.messages);
            // Each read makes another copy; the original is untouched.
            const again = await api.get(`${V1}/chats/${chat.id}`).set(reader.bearer).expect(200);
            expect(bodyOf<ChatRead>(again).id).to.not.equal(copy.id);
            expect((await api.get(`${V1}/chats/${copy.id}`).set(reader.bearer).expect(200)).body).to.deep.equal(copy);
            expect((await api.get(`${V1}/chats/${chat.id}`).set(p.owner.bearer).expect(200)).body).to.deep.equal(chat);
          }
        });
      }
    }
  });

  describe('updateChat — PUT /chats/{chat_id}', () => {
    for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
      for (const visibility of ['private', 'shared'] as const) {
        const writeStatus = caller === 'anonymous' ? 401 : caller === 'other' ? 403 : 200;
        it(`when the ${caller} replaces a ${visibility} chat, then ${writeStatus}`, async () => {
          const chat = await makeChat(api, p.owner, preset.id, visibility, MESSAGES);
          const res = await api
            .put(`${V1}/chats/${chat.id}`)
            .set(headersOf(p, caller))
            .send({ preset_id: preset.id, title: 'Renamed', messages: [] })
            .expect(writeStatus);
          if (writeStatus === 403)
            expect(res.body).to.deep.equal({ detail: "Insufficient permissions: You cannot update other user's chat" });
          const now = bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat.id}`).set(p.owner.bearer).expect(200));
          if (writeStatus === 200) {
            expect(res.body).to.include({ id: chat.id, owner_id: p.owner.id, title: 'Renamed', visibility });
            expect(bodyOf<ChatRead>(res).messages).to.deep.equal([]);
            expect(now).to.deep.equal(res.body);
          } else expect(now).to.deep.equal(chat);
        });
      }
    }

    it('when a chat is replaced, then the preset is checked before the chat, then the chat, then the caller', async () => {
      const missingPreset = await api
        .put(`${V1}/chats/${crypto.randomUUID()}`)
        .set(p.other.bearer)
        .send({ preset_id: crypto.randomUUID(), title: 'x', messages: [] })
        .expect(400);
      expect(missingPreset.body).to.deep.equal({ detail: 'Preset not found' });
      const missingChat = await api
        .put(`${V1}/chats/${crypto.randomUUID()}`)
        .set(p.other.bearer)
        .send({ preset_id: preset.id, title: 'x', messages: [] })
        .expect(404);
      expect(missingChat.body).to.deep.equal({ detail: 'Chat not found' });
      const chat = await makeChat(api, p.owner, preset.id);
      const bothWrong = await api
        .put(`${V1}/chats/${chat.id}`)
        .set(p.other.bearer)
        .send({ preset_id: crypto.randomUUID(), title: 'x', messages: [] })
        .expect(400);
      expect(bothWrong.body).to.deep.equal({ detail: 'Preset not found' });
    });

    it('when a chat is replaced without a visibility, then it keeps its own; with one, it changes; update_time moves', async () => {
      const chat = await makeChat(api, p.owner, preset.id, 'shared');
      const other = await makePreset(api, p.other, 'private');
      await new Promise((r) => setTimeout(r, 5));
      const kept = await api
        .put(`${V1}/chats/${chat.id}`)
        .set(p.owner.bearer)
        .send({ preset_id: other.id, title: 'Kept', messages: MESSAGES })
        .expect(200);
      expect(kept.body).to.include({
        visibility: 'shared',
        preset_id: other.id,
        title: 'Kept',
        create_time: chat.create_time,
      });
      expect(Date.parse(bodyOf<ChatRead>(kept).update_time)).to.be.greaterThan(Date.parse(chat.update_time));
      const changed = await api
        .put(`${V1}/chats/${chat.id}`)
        .set(p.owner.bearer)
        .send({ preset_id: preset.id, title: 'Changed', visibility: 'private', messages: [] })
        .expect(200);
      expect(bodyOf<ChatRead>(changed).visibility).to.equal('private');
      await api.get(`${V1}/chats/${chat.id}`).set(p.other.bearer).expect(403);
    });
  });

  describe('deleteChat — DELETE /chats/{chat_id}', () => {
    for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
      for (const visibility of ['private', 'shared'] as const) {
        const writeStatus = caller === 'anonymous' ? 401 : caller === 'other' ? 403 : 200;
        it(`when the ${caller} deletes a ${visibility} chat, then ${writeStatus}`, async () => {
          const chat = await makeChat(api, p.owner, preset.id, visibility, MESSAGES);
          const res = await api.delete(`${V1}/chats/${chat.id}`).set(headersOf(p, caller)).expect(writeStatus);
          if (writeStatus === 403)
            expect(res.body).to.deep.equal({ detail: "Insufficient permissions: You cannot delete other user's chat" });
          if (writeStatus === 200) {
            expect(res.body).to.deep.equal({ message: 'Chat deleted successfully' });
            await api.get(`${V1}/chats/${chat.id}`).set(p.owner.bearer).expect(404);
            expect(await server.db('aideer_messages').where({ chat_id: chat.id })).to.have.length(0);
          } else await api.get(`${V1}/chats/${chat.id}`).set(p.owner.bearer).expect(200);
        });
      }
    }
  });

  describe('createChat — POST /chats', () => {
    for (const caller of ['anonymous', 'owner', 'other', 'admin'] as const) {
      for (const visibility of ['private', 'unlisted', 'public'] as const) {
        const status = caller === 'anonymous' ? 401 : 200;
        it(`when the ${caller} creates a chat on the owner's ${visibility} preset, then ${status}${status === 200 ? ' (presets are not checked, as the original)' : ''}`, async () => {
          const base = await makePreset(api, p.owner, visibility, p.admin);
          const res = await api
            .post(`${V1}/chats`)
            .set(headersOf(p, caller))
            .send({ preset_id: base.id, title: 'On it', messages: [] })
            .expect(status);
          if (status === 200)
            expect(res.body).to.include({
              owner_id: p[caller as 'owner' | 'other' | 'admin'].id,
              preset_id: base.id,
              visibility: 'private',
            });
        });
      }
    }

    it('when a chat is created without a visibility, then it is private; anonymous gets 401', async () => {
      const res = bodyOf<ChatRead>(
        await api
          .post(`${V1}/chats`)
          .set(p.owner.bearer)
          .send({ preset_id: preset.id, title: 'T', messages: [] })
          .expect(200),
      );
      expect(res.visibility).to.equal('private');
      expect(res.create_time).to.equal(res.update_time);
      await api.post(`${V1}/chats`).send({ preset_id: preset.id, title: 'T', messages: [] }).expect(401);
    });

    it('when a chat names a preset that does not exist, then 400 Preset not found (not 404) and nothing is stored', async () => {
      const title = uniqueName('orphan');
      const res = await api
        .post(`${V1}/chats`)
        .set(p.owner.bearer)
        .send({ preset_id: crypto.randomUUID(), title, messages: [] })
        .expect(400);
      expect(res.body).to.deep.equal({ detail: 'Preset not found' });
      expect(await newestTitles(api, p.owner, 'chats')).to.not.include(title);
    });
  });

  for (const [op, operationId] of [
    ['read', 'readChat'],
    ['delete', 'deleteChat'],
  ] as const) {
    it(`when a chat that does not exist is ${op === 'read' ? 'read' : 'deleted'} (${operationId}), then 404 Chat not found`, async () => {
      const res = await (
        op === 'read' ? api.get(`${V1}/chats/${crypto.randomUUID()}`) : api.delete(`${V1}/chats/${crypto.randomUUID()}`)
      )
        .set(p.admin.bearer)
        .expect(404);
      expect(res.body).to.deep.equal({ detail: 'Chat not found' });
    });
  }

  it("when a chat body breaks the schema of createChat or updateChat, then 422 with FastAPI's items and nothing is stored", async () => {
    const missing = await api
      .post(`${V1}/chats`)
      .set(p.owner.bearer)
      .send({ preset_id: preset.id, messages: [] })
      .expect(422);
    expect(bodyOf<Invalid>(missing).detail[0]).to.include({ type: 'missing' });
    expect(bodyOf<Invalid>(missing).detail[0].loc).to.deep.equal(['body', 'title']);
    const badId = await api
      .post(`${V1}/chats`)
      .set(p.owner.bearer)
      .send({ preset_id: 'not-a-uuid', title: 'x', messages: [] })
      .expect(422);
    expect(bodyOf<Invalid>(badId).detail[0]).to.include({ type: 'uuid_parsing' });
    const badVisibility = await api
      .put(`${V1}/chats/${crypto.randomUUID()}`)
      .set(p.owner.bearer)
      .send({ preset_id: preset.id, title: 'x', visibility: 'unlisted', messages: [] })
      .expect(422);
    expect(bodyOf<Invalid>(badVisibility).detail[0].loc).to.deep.equal(['body', 'visibility']);
    const noMessages = await api
      .put(`${V1}/chats/${crypto.randomUUID()}`)
      .set(p.owner.bearer)
      .send({ preset_id: preset.id, title: 'x' })
      .expect(422);
    expect(bodyOf<Invalid>(noMessages).detail[0].loc).to.deep.equal(['body', 'messages']);
  });

  it('when a chat id is sent in upper case, then readChat, updateChat and deleteChat take it for the same chat', async () => {
    const chat = await makeChat(api, p.owner, preset.id);
    expect(
      bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat.id.toUpperCase()}`).set(p.owner.bearer).expect(200)).id,
    ).to.equal(chat.id);
    const replaced = await api
      .put(`${V1}/chats/${chat.id.toUpperCase()}`)
      .set(p.owner.bearer)
      .send({ preset_id: preset.id, title: 'Upper', messages: [] })
      .expect(200);
    expect(replaced.body).to.include({ id: chat.id, title: 'Upper' });
    await api.delete(`${V1}/chats/${chat.id.toUpperCase()}`).set(p.owner.bearer).expect(200);
    await api.get(`${V1}/chats/${chat.id}`).set(p.owner.bearer).expect(404);
  });

  it('when createChat or updateChat names the preset in upper case, then the chat is stored on that preset, in lower case', async () => {
    const created = bodyOf<ChatRead>(
      await api
        .post(`${V1}/chats`)
        .set(p.owner.bearer)
        .send({ preset_id: preset.id.toUpperCase(), title: 'Upper', messages: [] })
        .expect(200),
    );
    expect(created.preset_id).to.equal(preset.id);
    const other = await makePreset(api, p.owner, 'private');
    const replaced = await api
      .put(`${V1}/chats/${created.id}`)
      .set(p.owner.bearer)
      .send({ preset_id: other.id.toUpperCase(), title: 'Upper', messages: [] })
      .expect(200);
    expect(bodyOf<ChatRead>(replaced).preset_id).to.equal(other.id);
    expect(bodyOf<ChatRead>(await api.get(`${V1}/chats/${created.id}`).set(p.owner.bearer).expect(200))).to.include({
      preset_id: other.id,
    });
  });

  it('when a chat id is sent as urn:uuid:<id> to readChat, deleteChat or createChat, then 422 uuid_parsing and the chat is untouched', async () => {
    const chat = await makeChat(api, p.owner, preset.id);
    for (const req of [api.get(`${V1}/chats/urn:uuid:${chat.id}`), api.delete(`${V1}/chats/urn:uuid:${chat.id}`)]) {
      const res = bodyOf<Invalid>(await req.set(p.owner.bearer).expect(422));
      expect(res.detail[0]).to.include({ type: 'uuid_parsing', input: `urn:uuid:${chat.id}` });
      expect(res.detail[0].loc).to.deep.equal(['path', 'chat_id']);
    }
    const body = await api
      .post(`${V1}/chats`)
      .set(p.owner.bearer)
      .send({ preset_id: `urn:uuid:${preset.id}`, title: 'x', messages: [] })
      .expect(422);
    expect(bodyOf<Invalid>(body).detail[0].loc).to.deep.equal(['body', 'preset_id']);
    expect((await api.get(`${V1}/chats/${chat.id}`).set(p.owner.bearer).expect(200)).body).to.deep.equal(chat);
  });
});

describe('AIDeer messages', () => {
  let server: TestServer;
  let api: Client;
  let user: AideerUser;
  let preset: PresetRead;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    user = await signUp(api);
    preset = await makePreset(api, user, 'private');
  });

  it('when 60 messages are saved, then they come back in order, with defaults filled and times in UTC with Z', async () => {
    const messages = Array.from({ length: 60 }, (_, i) => ({
      role: (['user', 'assistant', 'system'] as const)[i % 3],
      type: i % 7 ? 'text' : 'image',
      content: `message ${i}`,
      ...(i % 2 ? { visibility: false } : {}),
    }));
    const before = Date.now();
    const chat = await makeChat(api, user, preset.id, 'private', messages);
    const after = Date.now();
    expect(chat.messages.map((m: { content: string }) => m.content)).to.deep.equal(messages.map((m) => m.content));
    chat.messages.forEach((m: MessageRead, i: number) => {
      expect(m).to.include({ role: messages[i].role, type: messages[i].type, visibility: i % 2 === 0 });
      expect(m.create_time).to.match(/Z$/);
      expect(Date.parse(m.create_time)).to.be.within(before, after);
    });
    expect(
      bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat.id}`).set(user.bearer).expect(200)).messages,
    ).to.deep.equal(chat.messages);
  });

  it('when a message carries its time with an offset or microseconds, then it is kept as UTC to the millisecond', async () => {
    const chat = await makeChat(api, user, preset.id, 'private', [
      { role: 'user', type: 'text', content: 'a', create_time: '2024-05-09T18:29:30.123456+08:00' },
      { role: 'user', type: 'text', content: 'b', create_time: '2024-05-09T10:29:31Z' },
    ]);
    expect(chat.messages.map((m: { create_time: string }) => m.create_time)).to.deep.equal([
      '2024-05-09T10:29:30.123Z',
      '2024-05-09T10:29:31.000Z',
    ]);
  });

  for (const [what, time] of [
    ['a leap second', '2016-12-31T23:59:60Z'],
    ['an offset that moves it past the year 9999', '9999-12-31T23:00:00-02:00'],
    ['an offset that moves it before the year 0000', '0000-01-01T00:30:00+01:00'],
  ]) {
    it(`when a message time is ${what}, then 422 at that message and nothing is stored`, async () => {
      const title = uniqueName('time');
      const messages = [
        { role: 'user', type: 'text', content: 'ok' },
        { role: 'user', type: 'text', content: 'bad', create_time: time },
      ];
      const res = bodyOf<Invalid>(
        await api.post(`${V1}/chats`).set(user.bearer).send({ preset_id: preset.id, title, messages }).expect(422),
      );
      expect(res.detail[0]).to.include({ type: 'datetime_parsing', input: time });
      expect(res.detail[0].loc).to.deep.equal(['body', 'messages', 1, 'create_time']);
      expect(await newestTitles(api, user, 'chats')).to.not.include(title);
      const presetRes = await api.post(`${V1}/presets`).set(user.bearer).send({ title, messages }).expect(422);
      expect(bodyOf<Invalid>(presetRes).detail[0].loc).to.deep.equal(['body', 'messages', 1, 'create_time']);
      const chat = await makeChat(api, user, preset.id);
      await api
        .put(`${V1}/chats/${chat.id}`)
        .set(user.bearer)
        .send({ preset_id: preset.id, title, messages })
        .expect(422);
      expect((await api.get(`${V1}/chats/${chat.id}`).set(user.bearer).expect(200)).body).to.deep.equal(chat);
      await api.put(`${V1}/presets/${preset.id}`).set(user.bearer).send({ title, messages }).expect(422);
    });
  }

  it("when a chat's messages are replaced, then the stored list is exactly the new one", async () => {
    const chat = await makeChat(api, user, preset.id, 'private', [{ role: 'user', type: 'text', content: 'first' }]);
    const next = [...chat.messages, { role: 'user', type: 'text', content: 'second' }];
    const res = bodyOf<ChatRead>(
      await api
        .put(`${V1}/chats/${chat.id}`)
        .set(user.bearer)
        .send({ preset_id: preset.id, title: chat.title, messages: next })
        .expect(200),
    );
    expect(res.messages.map((m: { content: string }) => m.content)).to.deep.equal(['first', 'second']);
    expect(res.messages[0]).to.deep.equal(chat.messages[0]);
    expect(
      bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat.id}`).set(user.bearer).expect(200)).messages,
    ).to.deep.equal(res.messages);
  });

  it('when a chat is saved with 9000 messages (more values than one statement binds on SQLite or Postgres), then every one is stored, in order', async () => {
    const messages = Array.from({ length: 9000 }, (_, i) => ({ role: 'user', type: 'text', content: `m${i}` }));
    const chat = await makeChat(api, user, preset.id, 'private', messages);
    expect(chat.messages.map((m: { content: string }) => m.content)).to.deep.equal(messages.map((m) => m.content));
    const read = await api.get(`${V1}/chats/${chat.id}`).set(user.bearer).expect(200);
    expect(bodyOf<ChatRead>(read).messages).to.deep.equal(chat.messages);
  });

  it('when two messages of one chat or preset would share a position, then the database refuses the second', async () => {
    const chat = await makeChat(api, user, preset.id);
    const row = {
      role: 'user' as const,
      type: 'text' as const,
      content: 'duplicate',
      visibility: true,
      create_time: Date.now(),
      position: 0,
    };
    for (const owner of [
      { chat_id: chat.id, preset_id: null },
      { chat_id: null, preset_id: preset.id },
    ]) {
      const err = await server
        .db('aideer_messages')
        .insert({ ...row, ...owner })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(uniqueViolation(err), JSON.stringify(owner)).to.not.equal(undefined);
    }
  });

  it('when a chat is given a title that is only white space, then it keeps its title', async () => {
    const chat = await makeChat(api, user, preset.id);
    const chats = new ChatStore(server.db);
    expect(keptTitle(' \n\t\u3000 ')).to.equal(undefined);
    expect(await server.db.transaction((trx) => chats.setTitle(trx, chat.id, keptTitle(' \n\t\u3000 ')))).to.equal(
      true,
    );
    expect((await api.get(`${V1}/chats/${chat.id}`).set(user.bearer).expect(200)).body).to.deep.equal(chat);
    expect(await server.db.transaction((trx) => chats.setTitle(trx, crypto.randomUUID(), keptTitle('Title')))).to.equal(
      false,
    );
  });
});

describe('AIDeer presets and chats: a change between the check and the write', () => {
  let server: TestServer;
  let api: Client;
  let p: People;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    p = await people(api, server);
  });

  type PresetRow = NonNullable<Awaited<ReturnType<PresetStore['byId']>>>;

  /** Sends `request` while each preset read is followed at once by `meanwhile`, as a concurrent request could. */
  async function afterPresetRead<T>(
    meanwhile: (row: PresetRow) => Promise<unknown>,
    request: () => PromiseLike<T>,
  ): Promise<T> {
    // The prototype's own function, read as a value and called below with each store's `this`.
    const byId: (this: PresetStore, id: string) => ReturnType<PresetStore['byId']> = Reflect.get(
      PresetStore.prototype,
      'byId',
    );
    PresetStore.prototype.byId = async function (this: PresetStore, id: string) {
      const row = await byId.call(this, id);
      if (row) await meanwhile(row);
      return row;
    };
    try {
      return await request();
    } finally {
      PresetStore.prototype.byId = byId;
    }
  }

  const deletePreset = (row: PresetRow) => server.db('aideer_presets').where({ id: row.id }).delete();
  const makePublic = (row: PresetRow) =>
    server.db('aideer_presets').where({ id: row.id }).update({ visibility: 'public' });

  it('when the preset a chat is moved to (updateChat) is deleted after its check, then 400 Preset not found and the chat is untouched', async () => {
    const chat = await makeChat(api, p.owner, (await makePreset(api, p.owner, 'private')).id);
    const doomed = await makePreset(api, p.owner, 'private');
    const res = await afterPresetRead(deletePreset, () =>
      api
        .put(`${V1}/chats/${chat.id}`)
        .set(p.owner.bearer)
        .send({ preset_id: doomed.id, title: 'Moved', messages: [] }),
    );
    expect(res.status).to.equal(400);
    expect(res.body).to.deep.equal({ detail: 'Preset not found' });
    expect((await api.get(`${V1}/chats/${chat.id}`).set(p.owner.bearer).expect(200)).body).to.deep.equal(chat);
  });

  for (const [op, operationId] of [
    ['replace', 'updatePreset'],
    ['delete', 'deletePreset'],
  ] as const) {
    const send = (preset: PresetRead, user: AideerUser) =>
      (op === 'replace'
        ? api.put(`${V1}/presets/${preset.id}`).send({ title: 'Replaced', visibility: 'private', messages: [] })
        : api.delete(`${V1}/presets/${preset.id}`)
      ).set(user.bearer);

    it(`when a preset is made public after the owner's ${op} (${operationId}) was checked, then 403 and it is left as it is`, async () => {
      const preset = await makePreset(api, p.owner, 'private');
      const res = await afterPresetRead(makePublic, () => send(preset, p.owner));
      expect(res.status).to.equal(403);
      expect(res.body).to.deep.equal({
        detail: `Insufficient permissions: You cannot ${op === 'replace' ? 'update' : 'delete'} public presets`,
      });
      expect((await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(200)).body).to.deep.equal({
        ...preset,
        visibility: 'public',
      });
    });

    it(`when a preset is made public after an admin's ${op} (${operationId}) was checked, then the ${op} is done (admins may)`, async () => {
      const preset = await makePreset(api, p.owner, 'private');
      const res = await afterPresetRead(makePublic, () => send(preset, p.admin));
      expect(res.status).to.equal(200);
      if (op === 'replace') expect(res.body).to.include({ id: preset.id, title: 'Replaced', visibility: 'private' });
      else await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(404);
    });

    it(`when a preset is deleted after the owner's ${op} (${operationId}) was checked, then 404 Preset not found`, async () => {
      const preset = await makePreset(api, p.owner, 'private');
      const res = await afterPresetRead(deletePreset, () => send(preset, p.owner));
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal({ detail: 'Preset not found' });
      await api.get(`${V1}/presets/${preset.id}`).set(p.owner.bearer).expect(404);
    });
  }
});

describe('AIDeer lists: which rows each caller sees', () => {
  let server: TestServer;
  let api: Client;
  let p: People;
  let presets: Record<string, PresetRead>;
  let chats: Record<string, ChatRead>;
  // A server of its own, so the lists hold exactly this test's rows.
  before(async () => {
    server = await startServer();
    api = client(server.url);
    p = await people(api, server);
    presets = {
      ownerPrivate: await makePreset(api, p.owner, 'private'),
      ownerUnlisted: await makePreset(api, p.owner, 'unlisted'),
      ownerPublic: await makePreset(api, p.owner, 'public', p.admin),
      otherPrivate: await makePreset(api, p.other, 'private'),
      otherUnlisted: await makePreset(api, p.other, 'unlisted'),
      adminPrivate: await makePreset(api, p.admin, 'private'),
      adminUnlisted: await makePreset(api, p.admin, 'unlisted'),
      adminPublic: await makePreset(api, p.admin, 'public', p.admin),
    };
    chats = {
      ownerPrivate: await makeChat(api, p.owner, presets.ownerPrivate.id, 'private'),
      ownerShared: await makeChat(api, p.owner, presets.otherPrivate.id, 'shared'),
      otherPrivate: await makeChat(api, p.other, presets.ownerPrivate.id, 'private'),
      otherShared: await makeChat(api, p.other, presets.adminPublic.id, 'shared'),
      adminPrivate: await makeChat(api, p.admin, presets.adminPrivate.id, 'private'),
    };
  });
  after(() => server.close());

  const all = { limit: 100 };

  it('when a user lists presets (listPresets), then they get their own (any visibility) and every public one', async () => {
    const res = await api.get(`${V1}/presets`).query(all).set(p.owner.bearer).expect(200);
    expect(ids(bodyOf<PresetRead[]>(res))).to.deep.equal(
      ids([presets.ownerPrivate, presets.ownerUnlisted, presets.ownerPublic, presets.adminPublic]),
    );
    const other = await api.get(`${V1}/presets`).query(all).set(p.other.bearer).expect(200);
    expect(ids(bodyOf<PresetRead[]>(other))).to.deep.equal(
      ids([presets.otherPrivate, presets.otherUnlisted, presets.ownerPublic, presets.adminPublic]),
    );
  });

  it("when an admin lists presets (listPresets), then they also get every unlisted one, but not other users' private ones", async () => {
    const res = bodyOf<PresetRead[]>(await api.get(`${V1}/presets`).query(all).set(p.admin.bearer).expect(200));
    expect(ids(res)).to.deep.equal(
      ids([
        presets.adminPrivate,
        presets.adminUnlisted,
        presets.adminPublic,
        presets.ownerPublic,
        presets.ownerUnlisted,
        presets.otherUnlisted,
      ]),
    );
    expect(res.find((x: { id: string }) => x.id === presets.ownerUnlisted.id)).to.deep.equal(presets.ownerUnlisted);
  });

  it('when anyone lists chats (listChats), then they get only their own, admins included', async () => {
    expect(
      ids(bodyOf<ChatRead[]>(await api.get(`${V1}/chats`).query(all).set(p.owner.bearer).expect(200))),
    ).to.deep.equal(ids([chats.ownerPrivate, chats.ownerShared]));
    expect(
      ids(bodyOf<ChatRead[]>(await api.get(`${V1}/chats`).query(all).set(p.other.bearer).expect(200))),
    ).to.deep.equal(ids([chats.otherPrivate, chats.otherShared]));
    const admin = await api.get(`${V1}/chats`).query(all).set(p.admin.bearer).expect(200);
    expect(admin.body).to.deep.equal([chats.adminPrivate]);
  });

  it('when listChats or listPresets is called without a token, then 401', async () => {
    await api.get(`${V1}/chats`).expect(401);
    await api.get(`${V1}/presets`).expect(401);
  });

  it('when the parameters of listChats or listPresets are out of range or unknown values, then 422 naming the parameter', async () => {
    for (const [query, name] of [
      [{ limit: 500 }, 'limit'],
      [{ limit: 0 }, 'limit'],
      [{ offset: -1 }, 'offset'],
      [{ order_by: 'owner_id' }, 'order_by'],
      [{ order: 'up' }, 'order'],
    ] as const) {
      for (const path of ['chats', 'presets']) {
        const res = await api.get(`${V1}/${path}`).query(query).set(p.owner.bearer).expect(422);
        expect(bodyOf<Invalid>(res).detail[0].loc).to.deep.equal(['query', name]);
      }
    }
  });
});

/** What the list tests compare of a listed chat or preset. */
type ListOrder = 'id' | 'title' | 'create_time' | 'update_time';
type Listed = Pick<ChatRead | PresetRead, ListOrder>;

describe('AIDeer lists: paging and ordering over 27 rows', () => {
  let server: TestServer;
  let api: Client;
  let user: AideerUser;
  const TOTAL = 27;
  // Mixed case, digits and CJK: code-point order differs from any locale's order.
  const titles = Array.from(
    { length: TOTAL },
    (_, i) => [`apple ${i}`, `Zebra ${i}`, `旅行 ${i}`, `_under ${i}`, `Banana ${i}`, `0 zero ${i}`][i % 6],
  );

  before(async () => {
    server = await startServer();
    api = client(server.url);
    user = await signUp(api);
    let presetId = '';
    for (let i = 0; i < TOTAL; i++) {
      presetId ||= bodyOf<PresetRead>(
        await api.post(`${V1}/presets`).set(user.bearer).send({ title: titles[i], messages: [] }).expect(200),
      ).id;
      if (i) await api.post(`${V1}/presets`).set(user.bearer).send({ title: titles[i], messages: [] }).expect(200);
      await api
        .post(`${V1}/chats`)
        .set(user.bearer)
        .send({ preset_id: presetId, title: titles[i], messages: [] })
        .expect(200);
    }
    // Spread the times over a few distinct values, so many rows tie and the id decides.
    for (const table of ['aideer_presets', 'aideer_chats']) {
      const rows = await server.db<{ id: string }>(table).select('id').orderBy('id');
      for (const [i, row] of rows.entries())
        await server
          .db(table)
          .where({ id: row.id })
          .update({
            create_time: 1_700_000_000_000 + (i % 4) * 1000,
            update_time: 1_700_000_000_000 + ((i * 7) % 5) * 1000,
          });
    }
  });
  after(() => server.close());

  const compare = (key: ListOrder, direction: 'asc' | 'desc') => (a: Listed, b: Listed) => {
    const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
    // Titles here are in the Basic Multilingual Plane, where UTF-16 order is code-point order.
    const primary = key === 'id' ? 0 : cmp(a[key], b[key]);
    return (direction === 'asc' ? 1 : -1) * (primary || cmp(a.id, b.id));
  };

  for (const [path, operationId] of [
    ['chats', 'listChats'],
    ['presets', 'listPresets'],
  ] as const) {
    for (const orderBy of ['id', 'title', 'create_time', 'update_time'] as const) {
      for (const order of ['asc', 'desc'] as const) {
        it(`when ${path} are read (${operationId}) in pages of 10 by ${orderBy} ${order}, then the pages join into the whole list in that order, ties broken by id`, async () => {
          const pages: Listed[][] = [];
          for (let offset = 0; offset < 40; offset += 10) {
            pages.push(
              bodyOf<Listed[]>(
                await api
                  .get(`${V1}/${path}`)
                  .query({ offset, limit: 10, order_by: orderBy, order })
                  .set(user.bearer)
                  .expect(200),
              ),
            );
          }
          expect(pages.map((x) => x.length)).to.deep.equal([10, 10, 7, 0]);
          const joined = pages.flat();
          expect(new Set(joined.map((r) => r.id)).size).to.equal(TOTAL);
          expect(joined.map((r) => r.id)).to.deep.equal([...joined].sort(compare(orderBy, order)).map((r) => r.id));
        });
      }
    }

    it(`when ${path} are listed (${operationId}) with no parameters, then the 10 newest come first (create_time desc)`, async () => {
      const res = await api.get(`${V1}/${path}`).set(user.bearer).expect(200);
      const every = bodyOf<Listed[]>(await api.get(`${V1}/${path}`).query({ limit: 100 }).set(user.bearer).expect(200));
      expect(res.body).to.deep.equal([...every].sort(compare('create_time', 'desc')).slice(0, 10));
    });
  }

  it('when listPresets sorts by title, then by code point: digits, upper case, underscore, lower case, then CJK', async () => {
    const res = await api
      .get(`${V1}/presets`)
      .query({ limit: 100, order_by: 'title', order: 'asc' })
      .set(user.bearer)
      .expect(200);
    const firstWords = [...new Set(bodyOf<PresetRead[]>(res).map((r: { title: string }) => r.title.split(' ')[0]))];
    expect(firstWords).to.deep.equal(['0', 'Banana', 'Zebra', '_under', 'apple', '旅行']);
  });

  // The test database's own default (C.UTF-8) already orders by code point: the declaration is what counts.
  it('when titles are compared, then by code point whatever the database default (Postgres columns COLLATE "C")', async () => {
    const tables = ['aideer_chats', 'aideer_presets'];
    if (usingPostgres) {
      const columns = await server
        .db('information_schema.columns')
        .select('table_name', 'collation_name')
        .whereRaw('table_schema = current_schema()')
        .andWhere({ column_name: 'title' })
        .whereIn('table_name', tables)
        .orderBy('table_name');
      expect(columns).to.deep.equal(tables.map((table) => ({ table_name: table, collation_name: 'C' })));
    } else {
      // SQLite compares text bytewise unless a column names another collation.
      const definitions = await server.db('sqlite_master').select('sql').whereIn('name', tables);
      expect(definitions).to.have.length(2);
      for (const { sql } of definitions) expect(sql).to.not.match(/collate/i);
    }
  });
});

describe('AIDeer cascades', () => {
  let server: TestServer;
  let api: Client;
  let p: People;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    p = await people(api, server);
  });

  async function likeAll(user: AideerUser, presetIds: string[], chatIds: string[]) {
    for (const id of presetIds) await api.post(`${V1}/users/me/likes/preset/${id}`).set(user.bearer).expect(200);
    for (const id of chatIds) await api.post(`${V1}/users/me/likes/chat/${id}`).set(user.bearer).expect(200);
  }

  it('when a preset is deleted (deletePreset), then every chat on it (of any user), their messages and likes, and its own go, and nothing else', async () => {
    const doomed = await makePreset(api, p.owner, 'unlisted');
    const kept = await makePreset(api, p.owner, 'unlisted');
    const ownersChat = await makeChat(api, p.owner, doomed.id, 'shared');
    const othersChat = await makeChat(api, p.other, doomed.id);
    const survivor = await makeChat(api, p.other, kept.id);
    await likeAll(p.other, [doomed.id, kept.id], [ownersChat.id, othersChat.id, survivor.id]);
    await likeAll(p.owner, [doomed.id], [othersChat.id]);

    await api.delete(`${V1}/presets/${doomed.id}`).set(p.owner.bearer).expect(200);

    for (const chat of [ownersChat, othersChat])
      await api.get(`${V1}/chats/${chat.id}`).set(p.admin.bearer).expect(404);
    expect(ids(bodyOf<ChatRead[]>(await api.get(`${V1}/chats`).query({ limit: 100 }).set(p.other.bearer).expect(200))))
      .to.include(survivor.id)
      .and.not.include(othersChat.id);
    expect((await api.get(`${V1}/users/me/likes`).set(p.other.bearer).expect(200)).body).to.deep.equal({
      preset_ids: [kept.id],
      chat_ids: [survivor.id],
    });
    expect((await api.get(`${V1}/users/me/likes`).set(p.owner.bearer).expect(200)).body).to.deep.equal({
      preset_ids: [],
      chat_ids: [],
    });
    const gone = [ownersChat.id, othersChat.id];
    expect(
      await server.db('aideer_messages').whereIn('chat_id', gone).orWhere({ preset_id: doomed.id }),
    ).to.have.length(0);
    expect((await api.get(`${V1}/chats/${survivor.id}`).set(p.other.bearer).expect(200)).body).to.deep.equal(survivor);
    expect(
      bodyOf<PresetRead>(await api.get(`${V1}/presets/${kept.id}`).set(p.owner.bearer).expect(200)).messages,
    ).to.deep.equal(kept.messages);
  });

  it('when a user is deleted (deleteUser), then their presets go with every chat built on them, and their likes', async () => {
    const leaving = await signUp(api);
    const preset = await makePreset(api, leaving, 'unlisted');
    const theirs = await makeChat(api, leaving, preset.id);
    const othersOnIt = await makeChat(api, p.other, preset.id);
    const othersElsewhere = await makeChat(api, p.other, (await makePreset(api, p.other, 'private')).id);
    await likeAll(leaving, [preset.id], [othersElsewhere.id]);

    await api.delete(`${V1}/users/${leaving.id}`).set(p.admin.bearer).expect(200);

    await api.get(`${V1}/presets/${preset.id}`).set(p.admin.bearer).expect(404);
    for (const chat of [theirs, othersOnIt]) await api.get(`${V1}/chats/${chat.id}`).set(p.admin.bearer).expect(404);
    await api.get(`${V1}/chats/${othersElsewhere.id}`).set(p.other.bearer).expect(200);
    expect(await server.db('aideer_chat_likes').where({ user_id: leaving.id })).to.have.length(0);
    expect(
      await server
        .db('aideer_messages')
        .whereIn('chat_id', [theirs.id, othersOnIt.id])
        .orWhere({ preset_id: preset.id }),
    ).to.have.length(0);
  });
});
