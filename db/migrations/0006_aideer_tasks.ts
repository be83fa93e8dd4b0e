// AIDeer tasks (decisions A5–A7): rows in the database, so every instance sees them. The runner
// holds a lease it renews while working (an expired lease means its process died); a stream holds
// another (one connection per task, released on disconnect, expiring after a crash). A credit
// record names the task it charged, uniquely: a task is charged at most once.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('aideer_tasks', (t) => {
    t.string('id', 36).primary();
    t.integer('user_id').notNullable().references('id').inTable('aideer_users').onDelete('CASCADE');
    t.string('chat_id', 36).notNullable();
    t.string('type', 32).notNullable();
    t.string('status', 16).notNullable();
    t.text('content').nullable(); // cumulative text so far; the final text when finished
    t.string('error', 255).nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.bigInteger('ended_at').nullable();
    t.bigInteger('runner_lease_until').nullable();
    t.string('stream_holder', 64).nullable();
    t.bigInteger('stream_lease_until').nullable();
    t.index(['user_id', 'status']);
    t.index(['status', 'runner_lease_until']);
    t.index(['ended_at']);
  });
  await knex.schema.alterTable('aideer_credit_records', (t) => {
    t.string('task_id', 36).nullable().unique();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('aideer_credit_records', (t) => {
    t.dropUnique(['task_id']);
    t.dropColumn('task_id');
  });
  await knex.schema.dropTable('aideer_tasks');
}
