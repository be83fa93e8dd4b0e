// Versioned migrations, applied in this order at start-up and by `npm run migrate`.
// Add a file, append it here; never edit one that has shipped.
import type { Knex } from 'knex';
import * as m0001 from './0001_oneapi_accounts.ts';
import * as m0002 from './0002_aideer_accounts.ts';
import * as m0003 from './0003_oneapi_topics.ts';
import * as m0004 from './0004_oneapi_subscriptions.ts';
import * as m0005 from './0005_aideer_chats.ts';
import * as m0006 from './0006_aideer_tasks.ts';
import * as m0007 from './0007_aideer_task_events.ts';
import * as m0008 from './0008_aideer_chat_page_index.ts';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

const migrations: [string, Migration][] = [
  ['0001_oneapi_accounts', m0001],
  ['0002_aideer_accounts', m0002],
  ['0003_oneapi_topics', m0003],
  ['0004_oneapi_subscriptions', m0004],
  ['0005_aideer_chats', m0005],
  ['0006_aideer_tasks', m0006],
  ['0007_aideer_task_events', m0007],
  ['0008_aideer_chat_page_index', m0008],
];

export const migrationSource: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: () => Promise.resolve(migrations),
  getMigrationName: ([name]) => name,
  getMigration: ([, migration]) => Promise.resolve(migration),
};
