// Stricter call signatures for openapi-fetch's methods (same functions at run time). openapi-fetch
// infers each call's options as a type parameter, and TypeScript does not check an inferred object
// for excess properties: once the required fields are there, a misspelt optional body field or
// query parameter (`nickame`, `limt`) compiles and is silently ignored by the server
// (openapi-ts/openapi-typescript#1769). Here every property the contract does not declare, at any
// depth of `params` and `body`, is typed `never`, so such a call fails `tsc`.
import type { Client, FetchResponse, MaybeOptionalInit } from 'openapi-fetch';

type KeysOf<S> = S extends unknown ? keyof S : never;
type ValueAt<S, K> = S extends unknown ? (K extends keyof S ? S[K] : never) : never;
type ElementOf<S> = S extends readonly (infer E)[] ? E : never;

/** `T` with every property that `Shape` (or any member of a union `Shape`) lacks typed `never`. */
type Exact<Shape, T> = unknown extends Shape
  ? T
  : T extends (...args: never[]) => unknown
    ? T
    : T extends readonly unknown[]
      ? { [I in keyof T]: Exact<ElementOf<Shape>, T[I]> }
      : T extends object
        ? { [K in keyof T]: K extends KeysOf<Shape> ? Exact<ValueAt<Shape, K>, T[K]> : never }
        : T;

/** Only what the contract describes is checked; the rest of a call's options is RequestInit's. */
type Checked<Shape, Init> = {
  [K in keyof Init]: K extends 'params' | 'body' ? Exact<ValueAt<Shape, K>, Init[K]> : Init[K];
};

type RequiredKeys<T> = { [K in keyof T]-?: Record<never, never> extends Pick<T, K> ? never : K }[keyof T];
type PathsWith<Paths, M extends string> = {
  [P in keyof Paths]: Paths[P] extends { [X in M]: object } ? P : never;
}[keyof Paths];
type InitOf<Paths, P extends keyof Paths, M extends string> = NonNullable<
  MaybeOptionalInit<Paths[P], M & keyof Paths[P]>
>;
type ResponseOf<Paths, P extends keyof Paths, M extends string, Init> = Paths[P][M &
  keyof Paths[P]] extends infer Op extends Record<string | number, unknown>
  ? FetchResponse<Op, Init, `${string}/${string}`>
  : never;

export type StrictMethod<Paths, M extends string> = <
  P extends PathsWith<Paths, M>,
  Init extends InitOf<Paths, P, M> & Checked<InitOf<Paths, P, M>, Init>,
>(
  url: P,
  ...init: RequiredKeys<InitOf<Paths, P, M>> extends never ? [Init?] : [Init]
) => Promise<ResponseOf<Paths, P, M, Init>>;

/** The client with its per-method calls (`GET`, `POST`...) checked strictly. */
export type StrictClient<Paths extends object> = Omit<Client<Paths>, 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH'> & {
  GET: StrictMethod<Paths, 'get'>;
  PUT: StrictMethod<Paths, 'put'>;
  POST: StrictMethod<Paths, 'post'>;
  DELETE: StrictMethod<Paths, 'delete'>;
  PATCH: StrictMethod<Paths, 'patch'>;
};

export function strict<Paths extends object>(client: Client<Paths>): StrictClient<Paths> {
  return client as unknown as StrictClient<Paths>;
}
