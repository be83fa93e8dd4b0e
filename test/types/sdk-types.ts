// Compile-time tests of the SDK, checked by `tsc --noEmit` (CI): each @ts-expect-error marks a call
// the contract's types must refuse. If the types ever let one through, tsc fails on the unused
// directive. Nothing here runs.
import { createAideerClient, createOneApiClient } from '../../sdk/index.ts';

const aideer = createAideerClient({ baseUrl: 'http://127.0.0.1:8000' });
const oneapi = createOneApiClient({ baseUrl: 'http://127.0.0.1:8000' });

export async function aideerCalls() {
  // Fields with a default in the contract may be left out of a request.
  await aideer.POST('/users', { body: { username: 'alice', password: 's3cret-pass' } });
  await aideer.POST('/presets', {
    body: { title: 'Planner', messages: [{ role: 'system', type: 'text', content: 'Plan trips.' }] },
  });

  // @ts-expect-error a path the API does not have
  await aideer.GET('/user/me');

  // @ts-expect-error a method the path does not have
  await aideer.DELETE('/users/me');

  // @ts-expect-error a misspelt body field (`pasword`), so the required `password` is missing
  await aideer.POST('/users', { body: { username: 'alice', pasword: 's3cret-pass' } });

  // @ts-expect-error a misspelt optional body field (`nickame`) next to every required one
  await aideer.POST('/users', { body: { username: 'alice', password: 's3cret-pass', nickame: 'Alice' } });

  await aideer.POST('/presets', {
    // @ts-expect-error a misspelt field deep in the body (a message's `visibility`)
    body: { title: 'Planner', messages: [{ role: 'system', type: 'text', content: 'Plan trips.', visible: false }] },
  });

  // @ts-expect-error a body field of the wrong type
  await aideer.POST('/tasks', { body: { chat_id: 'b3e1f6a2-7c94-4d2b-8e5f-1a0c9d3b7e64', type: 'video_generation' } });

  // @ts-expect-error a query parameter the operation does not have
  await aideer.GET('/chats', { params: { query: { page: 2 } } });

  // @ts-expect-error a misspelt query parameter (`limt`) next to a right one
  await aideer.GET('/chats', { params: { query: { offset: 10, limt: 10 } } });

  // @ts-expect-error a path parameter under the wrong name
  await aideer.GET('/chats/{chat_id}', { params: { path: { id: 'b3e1f6a2-7c94-4d2b-8e5f-1a0c9d3b7e64' } } });

  // @ts-expect-error a secured call whose required body is missing
  await aideer.POST('/users/me/credits');

  const me = await aideer.GET('/users/me');
  if (me.data) {
    const credits: number = me.data.credits_left;
    // @ts-expect-error a response field the schema does not have
    void me.data.credits;
    // @ts-expect-error a response field read as the wrong type
    const name: number = me.data.username;
    void credits;
    void name;
  } else {
    // Errors are typed from the spec's error schemas.
    const detail: string = me.error.detail;
    // @ts-expect-error One-API's envelope field on an AIDeer error
    void me.error.message;
    void detail;
  }

  const login = await aideer.logIn('alice', 's3cret-pass');
  // @ts-expect-error data is undefined until the error is ruled out
  void login.data.access_token;

  const stream = await aideer.streamTask('0c7d5e2a-93f1-4b6e-a8d4-2f1b6c9e7a35');
  if (stream.data) {
    for await (const event of stream.data) {
      const status: 'pending' | 'running' | 'finished' | 'failed' = event.status;
      // @ts-expect-error content may be null (a failed task with no error text)
      const text: string = event.content;
      void status;
      void text;
    }
    // A stream left unread is let go of with close().
    await stream.close();
  } else {
    const detail: unknown = stream.error.detail;
    // @ts-expect-error a refused stream has no connection to close
    await stream.close();
    void detail;
  }
}

export async function oneapiCalls() {
  await oneapi.POST('/topics', { body: { topic_name: '技术' } });

  // @ts-expect-error a path the API does not have
  await oneapi.GET('/topic');

  // @ts-expect-error logout is a GET
  await oneapi.POST('/user/logout');

  // @ts-expect-error a misspelt body field (`topicName`), so the required `topic_name` is missing
  await oneapi.POST('/topics', { body: { topicName: '技术' } });

  // @ts-expect-error a query parameter of the wrong type
  await oneapi.GET('/topics', { params: { query: { page: 'first' } } });

  await oneapi.GET('/phone_verification', {
    // @ts-expect-error a query parameter the operation does not have
    params: { query: { phone: '13800138000', purpose: 'login', channel: 'sms' } },
  });

  // @ts-expect-error a purpose the contract does not list
  await oneapi.GET('/phone_verification', { params: { query: { phone: '13800138000', purpose: 'reset' } } });

  // @ts-expect-error the path parameter is missing
  await oneapi.GET('/subscriptions/{id}/articles');

  const topics = await oneapi.GET('/topics');
  if (topics.data) {
    const count: number = topics.data.data.total;
    // @ts-expect-error the list sits in `data.topics`, not at the top level
    void topics.data.topics;
    void count;
  } else {
    const success: false = topics.error.success;
    // @ts-expect-error One-API errors carry `message`, not AIDeer's `detail`
    void topics.error.detail;
    void success;
  }

  // @ts-expect-error log-in needs the code as well as the phone
  await oneapi.logIn({ phone: '13800138000' });
}
