// src/http/openapiBackend.ts replaces, on each OpenAPIBackend instance, methods that openapi-backend
// does not document as replaceable, and repeats its validateRequest step for step. This test pins
// what the adapter was written against: the exact version, and the source of every method it
// replaces or relies on. An upgrade that changes any of them fails here, by name, before the
// behaviour suites would have to find out; re-read those methods against the adapter, then record
// the new fingerprints below.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import * as openapiBackend from 'openapi-backend';
import { RELIED_ON } from '../src/http/openapiBackend.ts';

const WRITTEN_AGAINST = '5.21.2';
/** sha256 (first 16 hex digits) of each method's source, as openapi-backend 5.21.2 ships it. */
const FINGERPRINTS: Record<string, string> = {
  'OpenAPIBackend.init': '0a079131186f25d2',
  'OpenAPIBackend.handleRequest': 'c5887a969bb19107',
  'OpenAPIRouter.getOperations': 'adba407d7a52e4b9',
  'OpenAPIRouter.getOperation': '6c96ff1e1c8538d2',
  'OpenAPIRouter.matchOperation': '31d3bc6f309e4c45',
  'OpenAPIRouter.parseRequest': '17b42b6b35e7b7e7',
  'OpenAPIRouter.parseRequestQuery': 'cadfc56312b0879c',
  'OpenAPIValidator.preCompileRequestValidators': '16fadbf4d41b5e76',
  'OpenAPIValidator.getAjv': '3dcc4a8bcfa6b7fe',
  'OpenAPIValidator.getRequestValidatorsForOperation': '42fa9cd4c398daf6',
  'OpenAPIValidator.validateRequest': 'e247df593a28b095',
  'OpenAPIValidator.buildRequestValidatorsForOperation': 'd66d6d72041e7569',
};

type Classes = Record<keyof typeof RELIED_ON, { prototype: Record<string, unknown> }>;
const classes = (
  (openapiBackend as unknown as { OpenAPIBackend?: unknown }).OpenAPIBackend
    ? openapiBackend
    : (openapiBackend as unknown as { default: unknown }).default
) as Classes;

describe('the openapi-backend adapter (src/http/openapiBackend.ts)', () => {
  it(`when openapi-backend is installed, then it is ${WRITTEN_AGAINST}, the version the adapter was written against, and package.json pins it exactly`, () => {
    const require = createRequire(import.meta.url);
    const installed = (
      JSON.parse(fs.readFileSync(require.resolve('openapi-backend/package.json'), 'utf8')) as { version: string }
    ).version;
    const pinned = (
      JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
        dependencies: Record<string, string>;
      }
    ).dependencies['openapi-backend'];
    expect({ installed, pinned }).to.deep.equal({ installed: WRITTEN_AGAINST, pinned: WRITTEN_AGAINST });
  });

  it('when the methods the adapter replaces or relies on are read, then each has the source it was written against', () => {
    const found: Record<string, string> = {};
    for (const [cls, methods] of Object.entries(RELIED_ON) as [keyof Classes, readonly string[]][]) {
      for (const method of methods) {
        const fn = classes[cls].prototype[method];
        found[`${cls}.${method}`] =
          typeof fn === 'function'
            ? crypto.createHash('sha256').update(fn.toString()).digest('hex').slice(0, 16)
            : `missing (${typeof fn})`;
      }
    }
    expect(found).to.deep.equal(FINGERPRINTS);
  });
});
