// Versioned migrations, applied in this order at start-up and by `npm run migrate`.
// Add a file, append it here; never edit one that has shipped.
import type { Knex } from 'knex';
import * as m0001 from './0001_oneapi_accounts.ts';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

const migrations: [string, Migration][] = [['0001_oneapi_accounts', m0001]];

export const migrationSource: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: async () => migrations,
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};
