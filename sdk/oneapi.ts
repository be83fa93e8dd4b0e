// The One-API client: openapi-fetch over the contract's paths (`/api`), sending the session's
// `Authorization` and `UserID` headers, with a log-in that remembers both.
import createClient, { type ClientOptions } from 'openapi-fetch';
import type { components, paths } from '../generated/oneapi.client.ts';
import { strict } from './strict.ts';

export type {
  components as OneApiComponents,
  operations as OneApiOperations,
  paths as OneApiPaths,
} from '../generated/oneapi.client.ts';

export interface OneApiClientOptions extends Omit<ClientOptions, 'baseUrl'> {
  /** The server's origin, e.g. `http://127.0.0.1:8000` (the client adds `/api`). */
  baseUrl: string;
  /** An access token from `POST /user/login`, sent as `Authorization: <token>`. */
  token?: string;
  /** The id of the token's user, sent as `UserID: <id>`. */
  userId?: number;
}

export function createOneApiClient({ baseUrl, token, userId, ...options }: OneApiClientOptions) {
  const client = strict(createClient<paths>({ ...options, baseUrl: `${baseUrl.replace(/\/+$/, '')}/api` }));
  let session = { token, userId };
  client.use({
    onRequest({ request }) {
      // A call that sets its own headers keeps them.
      if (session.token !== undefined && !request.headers.has('Authorization'))
        request.headers.set('Authorization', session.token);
      if (session.userId !== undefined && !request.headers.has('UserID'))
        request.headers.set('UserID', String(session.userId));
    },
  });

  return {
    ...client,

    /** The token and user id sent with every call, if any. */
    get session(): { token?: string; userId?: number } {
      return { ...session };
    },

    /** Sends this token and user id from now on (`{}` sends neither). */
    setSession(next: { token?: string; userId?: number }): void {
      session = { token: next.token, userId: next.userId };
    },

    /** Logs in with a phone and its `login` code and, when it succeeds, remembers the session. */
    async logIn(credentials: components['schemas']['LoginRequest']) {
      const result = await client.POST('/user/login', { body: credentials });
      if (result.data) session = { token: result.data.data.access_token, userId: result.data.data.id };
      return result;
    },

    /** Revokes the session's token on the server and, when it succeeds, forgets the session. */
    async logOut() {
      const result = await client.GET('/user/logout');
      if (result.data) session = { token: undefined, userId: undefined };
      return result;
    },
  };
}

export type OneApiClient = ReturnType<typeof createOneApiClient>;
