// AIDeer accounts: users, their credit records, redeem codes (kept after use), and a small
// key-value table for state several instances must share (the WeChat server token).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('aideer_users', (t) => {
    t.increments('id').primary();
    t.string('username', 50).notNullable().unique();
    t.integer('permission').notNullable().defaultTo(1);
    t.string('nickname', 50).nullable();
    t.string('password_hash', 100).nullable();
    t.string('wechat_openid', 128).nullable().unique();
    t.string('wechat_session_key', 128).nullable();
    t.string('avatar', 255).notNullable();
    t.bigInteger('credits_left').notNullable().defaultTo(0);
    t.bigInteger('created_at').notNullable();
  });
  await knex.schema.createTable('aideer_credit_records', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('aideer_users').onDelete('CASCADE');
    t.bigInteger('amount').notNullable();
    t.string('description', 255).notNullable();
    t.bigInteger('create_time').notNullable();
    t.index(['user_id']);
  });
  await knex.schema.createTable('aideer_redeem_codes', (t) => {
    t.string('code', 64).primary(); // upper-cased
    t.integer('value').notNullable();
    t.bigInteger('created_at').notNullable();
    t.integer('redeemed_by').nullable().references('id').inTable('aideer_users').onDelete('SET NULL');
    t.bigInteger('redeemed_at').nullable();
  });
  await knex.schema.createTable('aideer_kv', (t) => {
    t.string('key', 64).primary();
    t.text('value').notNullable();
    t.bigInteger('expires_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('aideer_kv');
  await knex.schema.dropTable('aideer_redeem_codes');
  await knex.schema.dropTable('aideer_credit_records');
  await knex.schema.dropTable('aideer_users');
}
