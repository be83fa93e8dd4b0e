// A Postgres database of a test's own, on a given server: created with a unique name, dropped
// (connections and all) when the test is done. For tests that run real server processes.
import crypto from 'node:crypto';
import knexFactory from 'knex';

export interface OwnPostgresDatabase {
  /** The server's URL with this database's name. */
  url: string;
  drop(): Promise<void>;
}

export async function createPostgresDatabase(serverUrl: string, prefix: string): Promise<OwnPostgresDatabase> {
  const name = `${prefix}_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = async (sql: string) => {
    const db = knexFactory({ client: 'pg', connection: serverUrl });
    try {
      await db.raw(sql);
    } finally {
      await db.destroy();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
