// The kinds of setting config.ts declares: each parses one environment variable, falls back to
// its default when unset or empty, and throws a ConfigError naming the variable otherwise.
import { urlProblem } from './urls.ts';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid setting ${variable}: ${message}`);
  }
}

export type Env = Record<string, string | undefined>;

export interface Setting<T> {
  name: string;
  default: string; // as written in the README
  description: string;
  parse: (raw: string | undefined, env: Env) => T;
}

export function setting<T>(
  name: string,
  def: string,
  description: string,
  parse: (raw: string | undefined, env: Env) => T,
): Setting<T> {
  return { name, default: def, description, parse };
}

export function int(name: string, def: number, min: number, max: number) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw === '') return def;
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got "${raw}"`);
    const n = Number(raw.trim());
    if (n < min || n > max) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  };
}

export function bool(name: string, def: boolean) {
  return (raw: string | undefined): boolean => {
    if (raw === undefined || raw === '') return def;
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    throw new ConfigError(name, `expected true or false, got "${raw}"`);
  };
}

export function oneOf<const T extends string>(name: string, values: readonly T[], def: T) {
  return (raw: string | undefined): T => {
    if (raw === undefined || raw === '') return def;
    const lower = raw.trim().toLowerCase();
    const v = values.find((value) => value === lower);
    if (v === undefined) throw new ConfigError(name, `expected one of ${values.join(', ')}, got "${raw}"`);
    return v;
  };
}

export function url(name: string, protocols: string[]) {
  return (raw: string | undefined): string | undefined => {
    if (raw === undefined || raw.trim() === '') return undefined;
    const problem = urlProblem(raw, protocols);
    if (problem) throw new ConfigError(name, problem);
    return raw.trim();
  };
}

export function str(def: string) {
  return (raw: string | undefined): string => (raw === undefined || raw.trim() === '' ? def : raw.trim());
}

export function optionalStr() {
  return (raw: string | undefined): string | undefined =>
    raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}
