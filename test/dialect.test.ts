// The documents declare the OpenAPI 3.1 base dialect (2020-12 plus OpenAPI's keywords), which
// Swagger UI shows without a warning. Tools that choose their validator by the plain 2020-12 URI
// (Stoplight Prism) read them as draft-07 instead: that is harmless only while no schema uses a
// keyword whose meaning differs between the drafts, which this test keeps true.
import { expect } from 'chai';
import { contract } from './helpers/contract.ts';

const OAS_BASE_DIALECT = 'https://spec.openapis.org/oas/3.1/dialect/base';
// Assertion keywords of 2019-09/2020-12 that draft-07 ignores or reads differently.
const NEWER_KEYWORDS = [
  'prefixItems',
  'unevaluatedProperties',
  'unevaluatedItems',
  'dependentRequired',
  'dependentSchemas',
  '$defs',
  '$dynamicRef',
  '$anchor',
  'minContains',
  'maxContains',
];
// Beside a $ref, draft-07 ignores every keyword: only annotations may stand there.
const ANNOTATIONS = new Set([
  '$ref',
  'description',
  'summary',
  'example',
  'examples',
  'default',
  'title',
  'deprecated',
  'readOnly',
  'writeOnly',
]);

function findings(node: unknown, at: string, out: string[]): string[] {
  if (Array.isArray(node)) node.forEach((n, i) => findings(n, `${at}/${i}`, out));
  else if (node && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    if (typeof obj.$ref === 'string') {
      const extra = Object.keys(obj).filter((k) => !ANNOTATIONS.has(k));
      if (extra.length) out.push(`${at}: ${extra.join(', ')} beside $ref`);
    }
    for (const [k, v] of Object.entries(obj)) {
      // Property names and examples are data, not keywords.
      if (NEWER_KEYWORDS.includes(k) && !at.endsWith('/properties')) out.push(`${at}: uses ${k}`);
      if (k !== 'example' && k !== 'examples') findings(v, `${at}/${k}`, out);
    }
  }
  return out;
}

describe('the schema dialect of both documents', () => {
  for (const api of ['aideer', 'oneapi'] as const) {
    it(`when ${api}'s document is read, then it declares the OpenAPI 3.1 base dialect`, () => {
      expect(contract.docs[api].jsonSchemaDialect).to.equal(OAS_BASE_DIALECT);
    });

    it(`when ${api}'s schemas are read as draft-07, then they mean what they mean in 2020-12`, () => {
      expect(findings(contract.docs[api], '#', [])).to.deep.equal([]);
    });
  }
});
