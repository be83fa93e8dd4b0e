// prepare() (src/db.ts), the statements of the hot paths, on the suite's database: rows as arrays
// where asked, and a clear refusal where a statement has no rows to shape.
import { expect } from 'chai';
import { prepare } from '../src/db.ts';
import { sharedServer, type TestServer } from './helpers/server.ts';

describe('prepare(): rows as arrays', () => {
  let server: TestServer;
  before(async () => {
    server = await sharedServer();
  });

  it("when a SELECT is prepared with { rows: 'array' }, then each row is an array in the select list's order", async () => {
    const select = prepare<[number, string]>(server.db, "SELECT 7 AS n, 'x' AS s", { rows: 'array' });
    expect(await select.all()).to.deep.equal([[7, 'x']]);
  });

  it("when a write with RETURNING is prepared with { rows: 'array' }, then it answers its rows as arrays", async () => {
    await server.db('aideer_kv').insert({ key: 'prepare-test', value: 'v', expires_at: 1 }).onConflict('key').merge();
    const write = prepare<[string]>(server.db, 'UPDATE aideer_kv SET value = ? WHERE key = ? RETURNING key', {
      rows: 'array',
    });
    expect(await write.all('w', 'prepare-test')).to.deep.equal([['prepare-test']]);
  });

  it("when a write without RETURNING is prepared with { rows: 'array' }, then running it throws, naming the statement", async () => {
    const write = prepare(server.db, 'UPDATE aideer_kv SET value = ? WHERE key = ?', { rows: 'array' });
    const err = await write.run('w', 'prepare-test').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).to.contain("{ rows: 'array' } on a statement that returns no rows: UPDATE aideer_kv");
  });
});
