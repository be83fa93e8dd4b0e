// AIDeer task events with ids, and claims any instance can take over (issue 13). The row carries
// what every instance needs to rebuild each event of the current run exactly: the text, one
// length per running event, the ids of the run's first and last events. A claim names its
// instance; `attempts` counts the runs started, so a task is failed only after the configured number.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('aideer_tasks', (t) => {
    t.bigInteger('event_seq').notNullable().defaultTo(0); // id of the last event sent (0: none yet)
    t.bigInteger('run_first_seq').notNullable().defaultTo(1); // id of the current run's first event
    t.text('event_marks').nullable(); // JSON array: the text's length at each running event of the run
    t.integer('attempts').notNullable().defaultTo(0);
    t.string('runner_id', 64).nullable();
    t.index(['stream_holder']); // every instance renews its streams' holds in one query
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('aideer_tasks', (t) => {
    t.dropIndex(['stream_holder']);
    t.dropColumn('event_seq');
    t.dropColumn('run_first_seq');
    t.dropColumn('event_marks');
    t.dropColumn('attempts');
    t.dropColumn('runner_id');
  });
}
