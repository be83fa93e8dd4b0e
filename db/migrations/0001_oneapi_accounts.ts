// One-API accounts: users, hashed access tokens (several per user), hashed verification codes.
// Times are epoch milliseconds (bigint), identical on SQLite and Postgres.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('oneapi_users', (t) => {
    t.increments('id').primary();
    t.string('username', 32).notNullable().unique();
    t.string('display_name', 20).notNullable().defaultTo('');
    t.integer('role').notNullable().defaultTo(1);
    t.integer('status').notNullable().defaultTo(1);
    t.string('group', 32).notNullable().defaultTo('default');
    t.string('school', 100).notNullable().defaultTo('');
    t.string('college', 100).notNullable().defaultTo('');
    t.string('phone', 11).notNullable().unique();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('oneapi_tokens', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('oneapi_users').onDelete('CASCADE');
    t.string('token_hash', 64).notNullable().unique();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['user_id']);
  });
  // One live code per phone: a new send replaces the previous one (after the cooldown).
  await knex.schema.createTable('oneapi_phone_codes', (t) => {
    t.string('phone', 11).primary();
    t.string('purpose', 16).notNullable();
    t.string('code_hash', 64).notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.bigInteger('sent_at').notNullable();
    t.bigInteger('expires_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('oneapi_phone_codes');
  await knex.schema.dropTable('oneapi_tokens');
  await knex.schema.dropTable('oneapi_users');
}
