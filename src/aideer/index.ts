// AIDeer under /api/v1: the operations of openapi/aideer.yaml.
import type { Router } from 'express';
import { bindApi } from '../http/bind.ts';
import { loadSpec } from '../spec.ts';
import { notImplemented, notImplementedHandlers } from '../notImplemented.ts';
import type { Logger } from '../logger.ts';
import { aideerErrors, notImplementedResult } from './errors.ts';
import type { AideerHandlers } from './types.ts';

export interface AideerDeps {
  logger: Logger;
}

export async function createAideer({ logger }: AideerDeps): Promise<Router> {
  const handlers = {
    ...notImplementedHandlers(notImplemented.aideer, notImplementedResult),
  } satisfies AideerHandlers;
  return bindApi<undefined>({
    name: 'AIDeer (openapi/aideer.yaml)',
    document: loadSpec('aideer'),
    handlers: handlers as never,
    securityHandlers: {},
    authFrom: () => undefined,
    errors: aideerErrors,
    logger,
  });
}
