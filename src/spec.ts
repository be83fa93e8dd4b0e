// The two contracts, read once. The server, the scripts and the tests all use these.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Document } from 'openapi-backend';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const SPEC_FILES = {
  aideer: path.join(ROOT, 'openapi', 'aideer.yaml'),
  oneapi: path.join(ROOT, 'openapi', 'oneapi.yaml'),
} as const;

export type ApiName = keyof typeof SPEC_FILES;

const cache = new Map<ApiName, Document>();

export function loadSpec(name: ApiName): Document {
  let doc = cache.get(name);
  if (!doc) {
    doc = parse(fs.readFileSync(SPEC_FILES[name], 'utf8')) as Document;
    cache.set(name, doc);
  }
  return structuredClone(doc);
}
