// The two contracts, read once. The server, the scripts and the tests all use these.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
// js-yaml: about twice as fast as `yaml` on these documents, which matters for start-up time.
import { load } from 'js-yaml';
import type { Document } from 'openapi-backend';

/** The repository root: the folder holding openapi/, whether running from src/, dist/src/ or the bundle dist/server.js. */
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

/**
 * Where `npm run build` leaves each document as JSON (scripts/build-specs.ts): parsing YAML was
 * 6–12% of start-up, JSON.parse of the same document a small fraction of it. Each file names the
 * SHA-256 of the YAML it came from, so an edited YAML is never served from a stale copy.
 */
export const BUILT_SPEC_FILES = {
  aideer: path.join(ROOT, 'dist', 'openapi', 'aideer.json'),
  oneapi: path.join(ROOT, 'dist', 'openapi', 'oneapi.json'),
} as const;

export interface BuiltSpec {
  sha256: string;
  document: Document;
}

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

/** The YAML document parsed, and the JSON that stands for it (or why it cannot). */
export function buildSpec(name: ApiName): BuiltSpec {
  const yaml = fs.readFileSync(SPEC_FILES[name], 'utf8');
  // js-yaml's load returns unknown; the documents are linted and validated in CI.
  const document = load(yaml) as Document;
  // YAML has values JSON has not (timestamps become Dates, .inf...): the copy must be the same document.
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(document)), document))
    throw new Error(`${SPEC_FILES[name]}: holds values JSON cannot carry (an unquoted date?); quote them`);
  return { sha256: sha256(yaml), document };
}

const cache = new Map<ApiName, Document>();

export function loadSpec(name: ApiName): Document {
  let doc = cache.get(name);
  if (!doc) {
    const yaml = fs.readFileSync(SPEC_FILES[name], 'utf8');
    // js-yaml's load returns unknown; the documents are linted and validated in CI.
    doc = builtCopy(name, sha256(yaml)) ?? (load(yaml) as Document);
    cache.set(name, doc);
  }
  return structuredClone(doc);
}

/** The build's JSON copy of the document when it was made from this very YAML text. */
function builtCopy(name: ApiName, yamlSha256: string): Document | undefined {
  let text: string;
  try {
    text = fs.readFileSync(BUILT_SPEC_FILES[name], 'utf8');
  } catch {
    return undefined; // not built (running from source)
  }
  // JSON.parse returns any; the file is what buildSpec made, checked by its hash below.
  const built = JSON.parse(text) as BuiltSpec;
  return built.sha256 === yamlSha256 ? built.document : undefined;
}
