// One-API subscriptions and the shared article store (decisions O10, O11).
// Times are epoch milliseconds (bigint), identical on SQLite and Postgres.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // A deleted subscription is removed, so (user_id, topic_name) can be plainly unique: two
  // concurrent creates of one name by one user cannot both insert.
  await knex.schema.createTable('oneapi_subscriptions', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('oneapi_users').onDelete('CASCADE');
    t.string('topic_name', 100).notNullable();
    t.text('topic_description').notNullable().defaultTo('');
    t.integer('status').notNullable().defaultTo(1); // 1 active, 0 cancelled
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['user_id', 'topic_name']);
  });
  await knex.schema.createTable('oneapi_articles', (t) => {
    t.increments('id').primary();
    t.string('title', 255).notNullable();
    t.text('content').notNullable().defaultTo('');
    t.string('author', 100).notNullable().defaultTo('');
    t.bigInteger('published_at').nullable();
    t.string('article_url', 500).notNullable().unique();
    // Title and content in the application's match form (matchKey in src/oneapi/domain/articles.ts), so
    // matching is the same Unicode-aware comparison on SQLite (whose LOWER() knows only ASCII) and
    // on Postgres (whose LOWER() depends on the database's locale).
    t.text('title_key').notNullable();
    t.text('content_key').notNullable();
    t.string('source', 500).notNullable(); // the feed it came from, or `admin:<user id>`
    t.bigInteger('created_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('oneapi_articles');
  await knex.schema.dropTable('oneapi_subscriptions');
}
