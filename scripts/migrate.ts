// `npm run migrate`: applies pending migrations to the configured database, then exits.
import dotenv from 'dotenv';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createDb, migrate } from '../src/db.ts';

dotenv.config({ quiet: true });
try {
  const config = loadConfig();
  const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const applied = await migrate(db);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await db.destroy();
  }
} catch (err) {
  console.error(err instanceof ConfigError ? `Refusing to migrate. ${err.message}` : err);
  process.exit(1);
}
