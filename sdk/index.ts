// The typed SDK for both APIs: one openapi-fetch client per API, typed from generated/*.client.ts
// (the clients' reading of the specs), with the authentication of each wired in.
export {
  createAideerClient,
  type AideerClient,
  type AideerClientOptions,
  type AideerComponents,
  type AideerOperations,
  type AideerPaths,
  type TaskEvent,
  type TaskStreamOptions,
  TaskStreamLost,
} from './aideer.ts';
export {
  createOneApiClient,
  type OneApiClient,
  type OneApiClientOptions,
  type OneApiComponents,
  type OneApiOperations,
  type OneApiPaths,
} from './oneapi.ts';
export { readEventStream, type ServerSentEvent } from './sse.ts';
