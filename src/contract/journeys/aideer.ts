// The conformance runner's AIDeer journeys: accounts, presets, chats and likes; codes, credits, a
// task and its stream; refusals; the sweep; and, when allowed, the utils operations.
import type { Runner, RunnerOptions } from '../runner.ts';
import { NO_SUCH_UUID, TINY_PNG, unique, type Journey, type Plan } from '../journey.ts';
import type { StreamEventSeen } from '../checker.ts';

export function aideerPlan(runner: Runner): Plan[] {
  const opts = runner.options;
  return [
    ['aideer', 'accounts, presets, chats and likes', (j) => aideerUserJourney(j)],
    ['aideer', 'codes, credits, a task and its stream (admin)', (j) => aideerAdminJourney(j, opts)],
    ['aideer', 'refusals: bad ids, missing tokens, unknown routes', (j) => aideerRefusals(j)],
    [
      'aideer',
      'every secured operation without a token, every body over 1 MB, every id malformed or unknown',
      async (j) => runner.sweep(j, {}, bearer((await aideerSignUp(j)).token)),
    ],
    ...(opts.allowUtils
      ? [['aideer', 'utils (allowed by --allow-utils)', (j: Journey) => aideerUtils(j)] satisfies Plan]
      : []),
  ];
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

async function aideerSignUp(j: Journey): Promise<{ id: number; username: string; password: string; token: string }> {
  const username = unique('conf');
  const password = 'conformance-pass-1';
  const created = await j.call('POST', '/users', {
    json: { username, password, nickname: 'Conformance' },
    expect: 200,
  });
  return { id: j.number(created, 'id'), username, password, token: await aideerLogIn(j, username, password) };
}

async function aideerLogIn(j: Journey, username: string, password: string): Promise<string> {
  const res = await j.call('POST', '/session/oauth2/token', {
    form: { grant_type: 'password', username, password },
    expect: 200,
  });
  return j.string(res, 'access_token');
}

const presetBody = (title: string) => ({
  title,
  description: 'Made by the conformance runner',
  visibility: 'private',
  messages: [{ role: 'system', type: 'text', content: 'You are a helpful assistant.' }],
});
const chatBody = (presetId: string, title: string) => ({
  preset_id: presetId,
  title,
  visibility: 'private',
  messages: [{ role: 'user', type: 'text', content: 'Say hello to the conformance runner.' }],
});

async function aideerUserJourney(j: Journey) {
  const user = await aideerSignUp(j);
  const auth = bearer(user.token);
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    await j.call('POST', '/users', {
      json: { username: user.username, password: 'another-pass-1' },
      expect: [400, 422],
    });
    await j.call('POST', '/session/oauth2/token', {
      form: { username: user.username, password: 'wrong-pass-1' },
      expect: 401,
    });
    await j.call('GET', '/users/me', { headers: auth, expect: 200 });
    await j.call('GET', '/users/me/credits', { headers: auth, expect: 200 });
    await j.call('GET', `/users/${user.id}`, { headers: auth, expect: 200 });
    const form = new FormData();
    form.append('avatar_file', new Blob([TINY_PNG], { type: 'image/png' }), 'avatar.png');
    await j.call('POST', '/users/me/avatar', { headers: auth, multipart: form, expect: 200 });
    await j.call('GET', '/users/me/avatar', { headers: auth, expect: 307 });
    await j.call('GET', `/users/${user.id}/avatar`, { headers: auth, expect: 307 });
    await j.call('PUT', '/users/me/password', {
      headers: auth,
      json: { old_password: 'not-the-password', new_password: 'conformance-pass-2' },
      expect: [400, 401, 403, 422],
    });
    await j.call('PUT', '/users/me/password', {
      headers: auth,
      json: { old_password: user.password, new_password: 'conformance-pass-2' },
      expect: 200,
    });
    user.password = 'conformance-pass-2';
    await j.call('GET', `/users`, { headers: auth, expect: 403 });

    const preset = {
      id: j.string(
        await j.call('POST', '/presets', { headers: auth, json: presetBody(unique('preset')), expect: 200 }),
        'id',
      ),
    };
    cleanUp.unshift(() => j.call('DELETE', `/presets/${preset.id}`, { headers: auth, expect: [200, 404] }));
    await j.call('POST', '/presets', {
      headers: auth,
      json: { ...presetBody(unique('preset')), visibility: 'public' },
      expect: 403,
    });
    await j.call('POST', '/presets', { headers: auth, json: { title: 42 }, expect: 422 });
    await j.call('GET', '/presets', { headers: auth, query: { page: 1, size: 10 }, expect: 200 });
    await j.call('GET', `/presets/${preset.id}`, { headers: auth, expect: 200 });
    await j.call('PUT', `/presets/${preset.id}`, {
      headers: auth,
      json: { ...presetBody(unique('preset')), description: 'Changed' },
      expect: 200,
    });
    await j.call('POST', `/users/me/likes/preset/${preset.id}`, { headers: auth, expect: 200 });
    await j.call('GET', '/users/me/likes', { headers: auth, expect: 200 });
    await j.call('DELETE', `/users/me/likes/preset/${preset.id}`, { headers: auth, expect: 200 });

    const created = await j.call('POST', '/chats', {
      headers: auth,
      json: chatBody(preset.id, unique('chat')),
      expect: 200,
    });
    const chat = { id: j.string(created, 'id'), messages: j.list(created, 'messages') };
    cleanUp.unshift(() => j.call('DELETE', `/chats/${chat.id}`, { headers: auth, expect: [200, 404] }));
    await j.call('GET', '/chats', { headers: auth, query: { page: 1, size: 10 }, expect: 200 });
    await j.call('GET', `/chats/${chat.id}`, { headers: auth, expect: 200 });
    await j.call('PUT', `/chats/${chat.id}`, {
      headers: auth,
      json: {
        ...chatBody(preset.id, unique('chat')),
        messages: [...chat.messages, { role: 'assistant', type: 'text', content: 'Hello.' }],
      },
      expect: 200,
    });
    await j.call('POST', `/users/me/likes/chat/${chat.id}`, { headers: auth, expect: 200 });
    await j.call('DELETE', `/users/me/likes/chat/${chat.id}`, { headers: auth, expect: 200 });
    // No credits yet: the task is refused before it starts.
    await j.call('POST', '/tasks', { headers: auth, json: { chat_id: chat.id, type: 'chat_generation' }, expect: 402 });

    // Another user sees neither the private chat nor the private preset.
    const other = await aideerSignUp(j);
    await j.call('GET', `/chats/${chat.id}`, { headers: bearer(other.token), expect: 403 });
    await j.call('GET', `/presets/${preset.id}`, { headers: bearer(other.token), expect: 403 });
    await j.call('DELETE', `/chats/${chat.id}`, { headers: bearer(other.token), expect: 403 });
  } finally {
    await j.cleanUp(cleanUp);
  }
}

async function aideerAdminJourney(j: Journey, opts: RunnerOptions) {
  if (!opts.adminUser || !opts.adminPassword)
    j.skip('no admin credentials: pass --admin-user and --admin-password (or ADMIN_USER, ADMIN_PASSWD)');
  const admin = bearer(await aideerLogIn(j, opts.adminUser, opts.adminPassword));
  const user = await aideerSignUp(j);
  const auth = bearer(user.token);
  const cleanUp: (() => Promise<unknown>)[] = [
    () => j.call('DELETE', `/users/${user.id}`, { headers: admin, expect: [200, 404] }),
  ];
  try {
    await j.call('GET', '/users', { headers: admin, query: { page: 1, size: 5 }, expect: 200 });
    await j.call('PUT', `/users/${user.id}`, {
      headers: admin,
      json: { username: user.username, nickname: 'Conformance, renamed' },
      expect: 200,
    });
    await j.call('PUT', `/users/${user.id}/password`, {
      headers: admin,
      json: { new_password: 'conformance-pass-3' },
      expect: 200,
    });
    const token = await aideerLogIn(j, user.username, 'conformance-pass-3');
    Object.assign(auth, bearer(token));
    await j.call('GET', `/users/${2147483647}`, { headers: admin, expect: 404 });

    const code = unique('CODE').toUpperCase();
    await j.call('POST', '/codes', { headers: auth, json: { redeem_code: code, value: 100 }, expect: 403 });
    await j.call('POST', '/codes', { headers: admin, json: { redeem_code: code, value: 100 }, expect: 200 });
    cleanUp.unshift(() => j.call('DELETE', `/codes/${code}`, { headers: admin, expect: 200 }));
    await j.call('GET', `/codes/${code}`, { expect: 200 });
    await j.call('POST', '/users/me/credits', {
      headers: auth,
      json: { redeem_code: code.toLowerCase() },
      expect: 200,
    });
    await j.call('POST', '/users/me/credits', { headers: auth, json: { redeem_code: code }, expect: [400, 404, 422] });

    const preset = {
      id: j.string(
        await j.call('POST', '/presets', { headers: auth, json: presetBody(unique('preset')), expect: 200 }),
        'id',
      ),
    };
    const chat = {
      id: j.string(
        await j.call('POST', '/chats', { headers: auth, json: chatBody(preset.id, unique('chat')), expect: 200 }),
        'id',
      ),
    };
    cleanUp.unshift(() => j.call('DELETE', `/presets/${preset.id}`, { headers: auth, expect: [200, 404] }));
    const task = {
      task_id: j.string(
        await j.call('POST', '/tasks', {
          headers: auth,
          json: { chat_id: chat.id, type: 'chat_generation' },
          expect: 200,
        }),
        'task_id',
      ),
    };
    await j.call('GET', `/tasks/${task.task_id}`, { expect: 200 });
    const { status, events } = await j.stream(`/tasks/${task.task_id}/stream`);
    if (status !== 200) j.fail(`GET /tasks/${task.task_id}/stream: expected 200, got ${status}`);
    const order = streamOrderProblem(events);
    if (order) j.note([`GET /tasks/${task.task_id}/stream: ${order}`]);
    const final = j.string(await j.call('GET', `/tasks/${task.task_id}`, { expect: 200 }), 'status');
    if (final !== 'finished') j.fail(`task ${task.task_id} ended ${final}, not finished`);
    await j.call('DELETE', `/tasks/${task.task_id}`, { expect: 200 });
    await j.call('GET', `/tasks/${task.task_id}`, { expect: 404 });
    await j.call('GET', `/tasks/${task.task_id}/stream`, { expect: 404 });
    await j.call('GET', '/users/me/credits', { headers: auth, expect: 200 });
  } finally {
    await j.cleanUp(cleanUp);
  }
}

/** The order the stream's description promises: open, running states, one final state, close. */
export function streamOrderProblem(events: StreamEventSeen[]): string | undefined {
  const statusOf = (data: unknown) =>
    typeof data === 'object' && data !== null && 'status' in data ? data.status : undefined;
  const kinds = events.map((e) => (e.event === 'message' ? `state:${String(statusOf(e.data))}` : e.event));
  const shape = kinds.join(' ');
  if (!/^open( state:running)* state:(finished|failed) close$/.test(shape))
    return `events out of the documented order (open, running…, finished|failed, close): ${shape}`;
  return undefined;
}

async function aideerRefusals(j: Journey) {
  await j.call('GET', '/users/me', { expect: 401 });
  await j.call('GET', '/users/me', { headers: bearer('not-a-token'), expect: 401 });
  await j.call('GET', '/chats', { expect: 401 });
  await j.call('GET', '/presets/not-a-uuid', { expect: [401, 422] });
  await j.call('GET', `/tasks/${NO_SUCH_UUID}`, { expect: 404 });
  await j.call('GET', '/tasks/not-a-uuid', { expect: 422 });
  await j.call('GET', '/tasks/not-a-uuid/stream', { expect: 422 });
  await j.call('DELETE', `/tasks/${NO_SUCH_UUID}`, { expect: 404 });
  await j.call('GET', `/tasks/${NO_SUCH_UUID}/stream`, { expect: 404 });
  await j.call('GET', `/codes/${unique('nocode')}`, { expect: 422 });
  await j.call('POST', '/session/oauth2/token', { form: { username: '' }, expect: 422 });
  await j.call('GET', '/session/wechat/token', { expect: 422 });
  await j.call('POST', '/users', { json: { username: 'x' }, expect: 422 });
  const user = await aideerSignUp(j);
  const auth = bearer(user.token);
  await j.call('GET', `/presets/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('GET', `/chats/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('DELETE', `/chats/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('POST', `/users/me/likes/preset/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('POST', '/tasks', {
    headers: auth,
    json: { chat_id: NO_SUCH_UUID, type: 'chat_generation' },
    expect: [402, 404],
  });
  await j.call('POST', '/tasks', { headers: auth, json: { chat_id: 'x' }, expect: 422 });
  await j.call('GET', '/chats', { headers: auth, query: { order: 'sideways' }, expect: 422 });
  await j.call('GET', `/no-such-route-${unique('r')}`, { expect: 404 });
  await j.call('PATCH', '/users/me', { headers: auth, expect: 405 });
}

async function aideerUtils(j: Journey) {
  await j.call('GET', '/utils/init', { expect: [200, 404] });
  await j.call('GET', '/utils/admin', { expect: [200, 400, 404] });
  // Last, as its name says: it empties the deployment's database.
  await j.call('GET', '/utils/drop', { expect: [200, 404] });
}
