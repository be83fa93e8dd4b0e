// The chat list's page in index order (issue 11): the list reads one owner's chats sorted by
// creation time then id (the spec's default sort), which with an index on owner_id alone cost a
// sort of all the owner's chats on every request. The composite index serves that sort in both
// directions, and replaces the owner_id index, whose lookups (the user's ON DELETE CASCADE) it
// answers as well, so a chat write keeps the same number of indexes to update.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('aideer_chats', (t) => {
    t.index(['owner_id', 'create_time', 'id']);
    t.dropIndex(['owner_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('aideer_chats', (t) => {
    t.index(['owner_id']);
    t.dropIndex(['owner_id', 'create_time', 'id']);
  });
}
