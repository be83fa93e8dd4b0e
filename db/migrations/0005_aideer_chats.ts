// AIDeer presets, chats, their messages (in SQL, not Redis as the original: A4) and likes.
// Every table hangs off its user, preset or chat with ON DELETE CASCADE, so one DELETE removes
// everything below it in one statement and leaves no orphans.
import type { Knex } from 'knex';

/**
 * A title column that compares by code point, as the lists order titles on both databases: SQLite
 * compares text bytewise unless told otherwise; Postgres needs the "C" collation (knex's `collate`
 * only reaches MySQL).
 */
function title(knex: Knex, t: Knex.CreateTableBuilder): Knex.ColumnBuilder {
  // knex types its client as any; its config is the Knex.Config the connection was made with.
  const { config } = knex.client as { config: Knex.Config };
  return config.client === 'pg' ? t.specificType('title', 'varchar(50) COLLATE "C"') : t.string('title', 50);
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('aideer_presets', (t) => {
    t.string('id', 36).primary();
    t.integer('owner_id').notNullable().references('id').inTable('aideer_users').onDelete('CASCADE');
    title(knex, t).notNullable();
    t.string('description', 255).nullable();
    t.string('type', 32).notNullable();
    t.string('visibility', 16).notNullable();
    t.text('parameters').notNullable(); // JSON of the complete PresetParameters
    t.bigInteger('create_time').notNullable();
    t.bigInteger('update_time').notNullable();
    t.index(['owner_id']);
    t.index(['visibility']);
  });
  await knex.schema.createTable('aideer_chats', (t) => {
    t.string('id', 36).primary();
    t.integer('owner_id').notNullable().references('id').inTable('aideer_users').onDelete('CASCADE');
    t.string('preset_id', 36).notNullable().references('id').inTable('aideer_presets').onDelete('CASCADE');
    title(knex, t).notNullable();
    t.string('visibility', 16).notNullable();
    t.bigInteger('create_time').notNullable();
    t.bigInteger('update_time').notNullable();
    t.index(['owner_id']);
    t.index(['preset_id']);
  });
  await knex.schema.createTable('aideer_messages', (t) => {
    t.increments('id').primary();
    // Exactly one of chat_id and preset_id is set.
    t.string('chat_id', 36).nullable().references('id').inTable('aideer_chats').onDelete('CASCADE');
    t.string('preset_id', 36).nullable().references('id').inTable('aideer_presets').onDelete('CASCADE');
    t.integer('position').notNullable();
    t.string('role', 16).notNullable();
    t.string('type', 16).notNullable();
    t.text('content').notNullable();
    t.boolean('visibility').notNullable();
    t.bigInteger('create_time').notNullable();
    t.check('(?? IS NULL) <> (?? IS NULL)', ['chat_id', 'preset_id'], 'aideer_messages_one_owner');
    // One message per place in its conversation: a writer that raced another fails rather than duplicating a position.
    t.unique(['chat_id', 'position']);
    t.unique(['preset_id', 'position']);
  });
  await knex.schema.createTable('aideer_preset_likes', (t) => {
    t.integer('user_id').notNullable().references('id').inTable('aideer_users').onDelete('CASCADE');
    t.string('preset_id', 36).notNullable().references('id').inTable('aideer_presets').onDelete('CASCADE');
    t.primary(['user_id', 'preset_id']);
    t.index(['preset_id']);
  });
  await knex.schema.createTable('aideer_chat_likes', (t) => {
    t.integer('user_id').notNullable().references('id').inTable('aideer_users').onDelete('CASCADE');
    t.string('chat_id', 36).notNullable().references('id').inTable('aideer_chats').onDelete('CASCADE');
    t.primary(['user_id', 'chat_id']);
    t.index(['chat_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('aideer_chat_likes');
  await knex.schema.dropTable('aideer_preset_likes');
  await knex.schema.dropTable('aideer_messages');
  await knex.schema.dropTable('aideer_chats');
  await knex.schema.dropTable('aideer_presets');
}
