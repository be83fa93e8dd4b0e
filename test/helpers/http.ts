// Every HTTP request a test makes goes through here, and every response is checked against the
// contract before the test sees it: an off-contract response fails the test whatever it asserts.
import supertest from 'supertest';
import type { Response } from 'supertest';
import { contract } from './contract.ts';
import { CHECK_HEADER } from './server.ts';

export function checkContract(res: Response): void {
  const req = (res as unknown as { req: { method: string; path: string } }).req;
  const problems = contract.check({ method: req.method, url: req.path, status: res.status, headers: res.headers, body: res.body, text: res.text });
  if (problems.length) throw new Error(`Off-contract response:\n  ${problems.join('\n  ')}`);
}

type Method = 'get' | 'post' | 'put' | 'delete' | 'patch' | 'options' | 'head';

export interface Client {
  get(path: string): supertest.Test;
  post(path: string): supertest.Test;
  put(path: string): supertest.Test;
  delete(path: string): supertest.Test;
  patch(path: string): supertest.Test;
  options(path: string): supertest.Test;
  head(path: string): supertest.Test;
}

export function client(baseUrl: string): Client {
  const agent = supertest(baseUrl);
  const make = (method: Method) => (path: string) => agent[method](path).set(CHECK_HEADER, '1').expect(checkContract);
  return { get: make('get'), post: make('post'), put: make('put'), delete: make('delete'), patch: make('patch'), options: make('options'), head: make('head') };
}
