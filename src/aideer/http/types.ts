import type { operations } from '../../../generated/aideer.ts';
import type { HandlerMap } from '../../http/types.ts';
import type { AideerAuth } from './auth.ts';

export type AideerOperations = operations;
export type AideerHandlers = HandlerMap<operations, AideerAuth>;
