// The two contracts, read once. The server, the scripts and the tests all use these.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// js-yaml: about twice as fast as `yaml` on these documents, which matters for start-up time.
import { load } from 'js-yaml';
import type { Document } from 'openapi-backend';

/** The repository root: the folder holding openapi/, whether running from src/ or dist/src/. */
export const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'openapi', 'aideer.yaml'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('openapi/aideer.yaml not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

export const SPEC_FILES = {
  aideer: path.join(ROOT, 'openapi', 'aideer.yaml'),
  oneapi: path.join(ROOT, 'openapi', 'oneapi.yaml'),
} as const;

export type ApiName = keyof typeof SPEC_FILES;

const cache = new Map<ApiName, Document>();

export function loadSpec(name: ApiName): Document {
  let doc = cache.get(name);
  if (!doc) {
    doc = load(fs.readFileSync(SPEC_FILES[name], 'utf8')) as Document;
    cache.set(name, doc);
  }
  return structuredClone(doc);
}
