// Ajv for OpenAPI 3.1 documents: JSON Schema 2020-12 plus the OpenAPI formats.
import { Ajv2020, type Options, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS: its module.exports is the plugin, which is also its own `default`.
const addFormats = addFormatsModule.default;

const INT32 = 2 ** 31;

export function createAjv2020(opts: Options = {}): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true, ...opts });
  addFormats(ajv);
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -INT32 && n < INT32 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('float', { type: 'number', validate: () => true });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  ajv.addFormat('binary', true);
  ajv.addFormat('password', true);
  // The canonical 8-4-4-4-12 form only (ajv-formats also takes a `urn:uuid:` prefix, which no id
  // column holds), in either case.
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  return ajv;
}

/** Marks a string schema whose valid values are stored lower-cased (uuids): see requestAjv. */
export const LOWERCASE_KEYWORD = 'x-lowercase';

const shared = new Map<string, Ajv2020>();

/**
 * The Ajv openapi-backend compiles request validators with: one Ajv 2020 instance per option set,
 * shared by every operation of both APIs, instead of a fresh draft-07 instance per schema. Schemas
 * are not checked against the meta-schema here: the documents are linted and validated in CI.
 */
export function requestAjv(opts: Pick<Options, 'coerceTypes'>): Ajv2020 {
  const key = opts.coerceTypes ? 'coerce' : 'plain';
  let ajv = shared.get(key);
  if (!ajv) {
    // code.optimize off: Ajv's optimising pass over the generated code took about a fifth of
    // compiling the 31 request validators at start-up (~240 -> ~190 ms, pinned), and the
    // validators it skips optimising run as fast (0.78-0.81 us per call either way): it only folds
    // constants and drops unused names, which V8 does too.
    ajv = createAjv2020({
      verbose: true,
      useDefaults: true,
      coerceTypes: Boolean(opts.coerceTypes),
      validateSchema: false,
      code: { optimize: false },
    });
    // Requests reach handlers with such values lower-cased, so an id matches however it was typed.
    ajv.addKeyword({
      keyword: LOWERCASE_KEYWORD,
      schemaType: 'boolean',
      modifying: true,
      validate: (
        _on: boolean,
        data: unknown,
        _schema?: unknown,
        cxt?: { parentData: Record<string | number, unknown>; parentDataProperty: string | number },
      ) => {
        if (typeof data === 'string' && cxt?.parentData) cxt.parentData[cxt.parentDataProperty] = data.toLowerCase();
        return true;
      },
    });
    shared.set(key, ajv);
  }
  return ajv;
}

const compilers = new Map<string, { compile(schema: object): ValidateFunction }>();

/**
 * What openapi-backend compiles request validators with: requestAjv's instance, behind a memo keyed
 * by the schema's JSON. Across the operations of both APIs, 79 request schemas are only 31 distinct
 * texts (most operations share the same parameter schema, and bodies repeat), so start-up compiles
 * each text once; a validator is a pure function of its schema and options, so sharing it is safe
 * (openapi-backend reads `errors` right after each synchronous call).
 */
export function requestCompiler(opts: Pick<Options, 'coerceTypes'>): { compile(schema: object): ValidateFunction } {
  const key = opts.coerceTypes ? 'coerce' : 'plain';
  let compiler = compilers.get(key);
  if (!compiler) {
    const ajv = requestAjv(opts);
    const compiled = new Map<string, ValidateFunction>();
    compiler = {
      compile(schema) {
        const text = JSON.stringify(schema);
        let validate = compiled.get(text);
        if (!validate) compiled.set(text, (validate = ajv.compile(schema)));
        return validate;
      },
    };
    compilers.set(key, compiler);
  }
  return compiler;
}
