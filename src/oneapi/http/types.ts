import type { operations } from '../../../generated/oneapi.ts';
import type { HandlerMap } from '../../http/types.ts';
import type { OneApiAuth } from './auth.ts';

export type OneApiOperations = operations;
/** Public operations never read `auth`; secured ones get the authenticated user and token. */
export type OneApiHandlers = HandlerMap<operations, OneApiAuth>;
