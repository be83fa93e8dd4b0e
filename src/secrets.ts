// Development secrets: generated once and kept in the data folder, so a restart does not log
// everyone out. Production must set them explicitly (config.ts refuses to start otherwise).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type SecretName = 'oneapiSecret' | 'jwtSecret';

export function devSecret(dataDir: string, name: SecretName): string {
  const file = path.join(dataDir, 'secrets.json');
  let secrets: Partial<Record<SecretName, string>> = {};
  try {
    // JSON.parse returns any; the file is the one written below.
    secrets = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof secrets;
  } catch {
    // first start: no file yet
  }
  const known = secrets[name];
  if (known) return known;
  const secret = crypto.randomBytes(48).toString('base64url');
  secrets[name] = secret;
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secret;
}
