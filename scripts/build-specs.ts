// Part of `npm run build`: each contract as JSON in dist/openapi/, which src/spec.ts reads at
// start-up instead of parsing the YAML (when the YAML is still the one it came from).
import fs from 'node:fs';
import path from 'node:path';
import { BUILT_SPEC_FILES, buildSpec, SPEC_FILES, type ApiName } from '../src/spec.ts';

for (const name of Object.keys(SPEC_FILES) as ApiName[]) {
  const file = BUILT_SPEC_FILES[name];
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(buildSpec(name)));
  fs.renameSync(tmp, file);
}
