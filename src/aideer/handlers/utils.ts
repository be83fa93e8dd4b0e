// The `utils` tag (decision A12): debug helpers that exist only with DEBUG=true.
import type { Knex } from 'knex';
import { isPostgres, migrate } from '../../db.ts';
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import { ADMIN, userRead, UsernameTaken, type Users } from '../users.ts';
import type { Passwords } from '../passwords.ts';

export interface UtilsDeps {
  db: Knex;
  debug: boolean;
  users: Users;
  passwords: Passwords;
  admin: { user?: string; password?: string };
}

/** Every AIDeer table, read from the database's own catalogue so new ones are never missed. */
async function aideerTables(db: Knex): Promise<string[]> {
  const rows: { name: string }[] = isPostgres(db)
    ? (await db.raw(`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'aideer\\_%'`)).rows
    : await db.raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'aideer\\_%' ESCAPE '\\'`);
  return rows.map((r) => r.name);
}

/** Creates the configured admin unless a user of that name exists. */
export async function ensureAdmin(users: Users, passwords: Passwords, admin: { user?: string; password?: string }) {
  if (!admin.user || !admin.password) return 'unset' as const;
  try {
    return await users.create({ username: admin.user, permission: ADMIN, password_hash: await passwords.hash(admin.password) });
  } catch (err) {
    if (err instanceof UsernameTaken) return 'exists' as const;
    throw err;
  }
}

export function utilsHandlers({ db, debug, users, passwords, admin }: UtilsDeps) {
  // Outside DEBUG the routes answer as if they did not exist.
  if (!debug) {
    const absent = async () => detail(404, 'Not Found');
    return { initDatabase: absent, createAdmin: absent, dropDatabase: absent } satisfies Partial<AideerHandlers>;
  }
  return {
    initDatabase: async () => {
      await migrate(db);
      return { status: 200, body: { message: 'Database initialized' } };
    },

    createAdmin: async () => {
      const created = await ensureAdmin(users, passwords, admin);
      if (created === 'unset') return detail(500, 'Admin credentials not set');
      if (created === 'exists') return detail(400, 'Admin user already exists');
      return { status: 200, body: userRead(created) };
    },

    dropDatabase: async () => {
      const tables = await aideerTables(db);
      await db.transaction(async (trx) => {
        if (isPostgres(trx)) await trx.raw(`TRUNCATE ${tables.map((t) => `"${t}"`).join(', ')} CASCADE`);
        else for (const t of tables) await trx(t).delete();
      });
      return { status: 200, body: { message: 'Database dropped' } };
    },
  } satisfies Partial<AideerHandlers>;
}
