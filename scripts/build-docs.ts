// `npm run docs [-- --out DIR]`: the static Redoc site for both APIs (an index and one page per API,
// each document embedded), into docs-site/ by default. Opens from disk with no network.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildStaticSite } from '../src/docs.ts';
import { ROOT } from '../src/spec.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(ROOT, 'docs-site') } } });
const outDir = path.resolve(values.out);
const files = buildStaticSite(outDir);
console.log(
  `wrote ${files.map((f) => path.basename(f)).join(', ')} into ${outDir}\nopen ${path.join(outDir, 'index.html')}`,
);
