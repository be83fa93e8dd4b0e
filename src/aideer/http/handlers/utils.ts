// The `utils` tag (decision A12): debug helpers that exist only with DEBUG=true.
import type { Knex } from 'knex';
import { emptyTables, migrate } from '../../../db.ts';
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { Users } from '../../domain/users.ts';
import { userRead } from '../wire.ts';

export interface UtilsDeps {
  db: Knex;
  debug: boolean;
  users: Users;
  admin: { user?: string; password?: string };
}

export function utilsHandlers({ db, debug, users, admin }: UtilsDeps) {
  // Outside DEBUG the routes answer as if they did not exist.
  if (!debug) {
    const absent = () => detail(404, 'Not Found');
    return { initDatabase: absent, createAdmin: absent, dropDatabase: absent } satisfies Partial<AideerHandlers>;
  }
  return {
    initDatabase: async () => {
      await migrate(db);
      return { status: 200, body: { message: 'Database initialized' } };
    },

    createAdmin: async () => {
      const created = await users.ensureAdmin(admin);
      if (created === 'unset') return detail(500, 'Admin credentials not set');
      if (created === 'exists') return detail(400, 'Admin user already exists');
      return { status: 200, body: userRead(created) };
    },

    dropDatabase: async () => {
      await emptyTables(db, 'aideer_');
      return { status: 200, body: { message: 'Database dropped' } };
    },
  } satisfies Partial<AideerHandlers>;
}
