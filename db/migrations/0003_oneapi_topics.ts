// One-API topics and their messages (decisions O8, O9). A deleted topic keeps its row and messages
// with `deleted_at` set (a soft delete) and is 404 from then on. Times are epoch milliseconds.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('oneapi_topics', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('oneapi_users').onDelete('CASCADE');
    t.string('topic_name', 100).notNullable();
    t.string('model', 100).notNullable();
    t.integer('channel_id').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.bigInteger('deleted_at').nullable();
    // The caller's live topics, newest first.
    t.index(['user_id', 'deleted_at', 'created_at']);
  });
  await knex.schema.createTable('oneapi_topic_messages', (t) => {
    t.increments('id').primary();
    t.integer('topic_id').notNullable().references('id').inTable('oneapi_topics').onDelete('CASCADE');
    t.string('role', 16).notNullable();
    t.text('content').notNullable();
    t.bigInteger('created_at').notNullable();
    // A topic's messages in order, its count, and its most recent ones.
    t.index(['topic_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('oneapi_topic_messages');
  await knex.schema.dropTable('oneapi_topics');
}
