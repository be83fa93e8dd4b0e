// Prints the README's settings table from src/config.ts (a test checks the README against it).
import { SETTINGS } from '../src/config.ts';

console.log('| variable | default | meaning |');
console.log('| --- | --- | --- |');
for (const s of Object.values(SETTINGS)) console.log(`| \`${s.name}\` | ${s.default} | ${s.description} |`);
