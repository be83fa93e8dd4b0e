// The conformance runner's One-API journeys: accounts, topics and messages (with the sweep, on
// the same two users, as sign-ins are rate-limited); subscriptions and articles; refusals.
import type { Runner, RunnerOptions } from '../runner.ts';
import { fieldAt, unique, uniquePhone, type Journey, type Plan } from '../journey.ts';

export function oneapiPlan(runner: Runner): Plan[] {
  return [
    [
      'oneapi',
      "accounts, topics and messages; every secured operation without a token and with another user's UserID, every body over 1 MB, every id malformed or unknown",
      (j) => oneapiTopicsJourney(j, runner),
    ],
    ['oneapi', 'subscriptions and articles', (j) => oneapiSubscriptionsJourney(j, runner.options)],
    ['oneapi', 'refusals: bad input, missing tokens, unknown routes', (j) => oneapiRefusals(j)],
  ];
}

interface OneSession {
  id: number;
  token: string;
  headers: Record<string, string>;
}

async function oneapiCode(
  j: Journey,
  opts: RunnerOptions,
  phone: string,
  purpose: 'register' | 'login',
): Promise<string> {
  const res = await j.call('GET', '/phone_verification', { query: { phone, purpose }, expect: 200 });
  const sent = fieldAt(res.body, 'data');
  const code = opts.fixedCode ?? (typeof sent === 'string' ? sent : undefined);
  if (!code)
    j.skip('the server sends codes by SMS and returns none: pass --fixed-code on an environment with fixed codes');
  return code;
}

async function oneapiLogIn(j: Journey, opts: RunnerOptions, phone: string): Promise<OneSession> {
  const code = await oneapiCode(j, opts, phone, 'login');
  const res = await j.call('POST', '/user/login', { json: { phone, phone_verification_code: code }, expect: 200 });
  const id = j.number(res, 'data.id');
  const token = j.string(res, 'data.access_token');
  return { id, token, headers: { Authorization: token, UserID: String(id) } };
}

async function oneapiNewUser(j: Journey, opts: RunnerOptions): Promise<OneSession> {
  const phone = uniquePhone();
  const code = await oneapiCode(j, opts, phone, 'register');
  await j.call('POST', '/user/register', {
    json: { phone, phone_verification_code: code, display_name: 'Conformance', school: 'QA', college: 'Contracts' },
    expect: 200,
  });
  return oneapiLogIn(j, opts, phone);
}

async function oneapiTopicsJourney(j: Journey, runner: Runner) {
  const opts = runner.options;
  const me = await oneapiNewUser(j, opts);
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    await j.call('GET', '/user/self', { headers: me.headers, expect: 200 });
    await j.call('PUT', '/user/self', {
      headers: me.headers,
      json: { display_name: 'Conformance, renamed' },
      expect: 200,
    });
    await j.call('GET', '/topics', { headers: me.headers, query: { page: 1, size: 10 }, expect: 200 });
    const topic = {
      id: j.number(
        await j.call('POST', '/topics', {
          headers: me.headers,
          json: { topic_name: unique('topic'), model: 'echo', channel_id: 1 },
          expect: 200,
        }),
        'data.id',
      ),
    };
    cleanUp.unshift(() => j.call('DELETE', `/topics/${topic.id}`, { headers: me.headers, expect: [200, 404] }));
    await j.call('POST', `/topics/${topic.id}/messages`, {
      headers: me.headers,
      json: { content: 'Hello from the conformance runner' },
      expect: 200,
    });
    await j.call('GET', `/topics/${topic.id}/messages`, {
      headers: me.headers,
      query: { page: 1, size: 10 },
      expect: 200,
    });
    const other = await oneapiNewUser(j, opts);
    await j.call('GET', `/topics/${topic.id}/messages`, { headers: other.headers, expect: [403, 404] });
    await j.call('DELETE', `/topics/${topic.id}`, { headers: me.headers, expect: 200 });
    await j.call('DELETE', `/topics/${topic.id}`, { headers: me.headers, expect: 404 });
    // Sign-ins are rate-limited per address: the sweep reuses these two users.
    await runner.sweep(j, { Authorization: other.token, UserID: String(me.id) }, other.headers);
    await j.call('GET', '/user/logout', { headers: other.headers, expect: 200 });
    await j.call('GET', '/user/self', { headers: other.headers, expect: 401 });
  } finally {
    await j.cleanUp(cleanUp);
  }
  await j.call('GET', '/user/logout', { headers: me.headers, expect: 200 });
}

async function oneapiSubscriptionsJourney(j: Journey, opts: RunnerOptions) {
  const me = await oneapiNewUser(j, opts);
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    const sub = {
      id: j.number(
        await j.call('POST', '/subscriptions', {
          headers: me.headers,
          json: { topic_name: unique('sub'), topic_description: 'Made by the conformance runner' },
          expect: 200,
        }),
        'data.id',
      ),
    };
    cleanUp.unshift(() => j.call('DELETE', `/subscriptions/${sub.id}`, { headers: me.headers, expect: [200, 404] }));
    await j.call('GET', '/subscriptions', { headers: me.headers, expect: 200 });
    await j.call('PUT', `/subscriptions/${sub.id}/cancel`, { headers: me.headers, expect: 200 });
    await j.call('PUT', `/subscriptions/${sub.id}/reactivate`, { headers: me.headers, expect: 200 });
    await j.call('GET', `/subscriptions/${sub.id}/articles`, {
      headers: me.headers,
      query: { page: 1, size: 10 },
      expect: 200,
    });
    const article = {
      title: unique('article'),
      content: 'Written by the conformance runner.',
      author: 'QA',
      published_at: new Date().toISOString(),
      article_url: `https://example.com/${unique('a')}`,
    };
    await j.call('POST', '/articles', { headers: me.headers, json: article, expect: 403 });
    if (opts.rootPhone) {
      // Articles cannot be deleted through the API: this one stays.
      const root = await oneapiLogIn(j, opts, opts.rootPhone);
      await j.call('POST', '/articles', { headers: root.headers, json: article, expect: 200 });
    }
    await j.call('DELETE', `/subscriptions/${sub.id}`, { headers: me.headers, expect: 200 });
    await j.call('PUT', `/subscriptions/${sub.id}/cancel`, { headers: me.headers, expect: 404 });
  } finally {
    await j.cleanUp(cleanUp);
  }
  await j.call('GET', '/user/logout', { headers: me.headers, expect: 200 });
}

async function oneapiRefusals(j: Journey) {
  await j.call('GET', '/phone_verification', { query: { purpose: 'register' }, expect: 400 });
  await j.call('POST', '/user/register', {
    json: { phone: uniquePhone(), phone_verification_code: '000000' },
    expect: 400,
  });
  await j.call('POST', '/user/login', { json: { phone: 'x' }, expect: 400 });
  await j.call('GET', '/user/self', { expect: 401 });
  await j.call('GET', '/topics', { expect: 401 });
  await j.call('GET', '/subscriptions', { headers: { Authorization: 'not-a-token', UserID: '1' }, expect: 401 });
  await j.call('DELETE', '/topics/1', { expect: 401 });
  await j.call('GET', `/no-such-route-${unique('r')}`, { expect: 404 });
}
