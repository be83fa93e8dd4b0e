// A method+path matcher built once from the spec's paths. Matching walks the path's segments in a
// trie (static segments before templated ones), so its cost depends on the path, not on how many
// operations the API has. openapi-backend's own router rebuilds its operation list and a RegExp per
// templated path on every request.

export interface RoutedOperation {
  operationId: string;
  method: string; // lower case
  path: string; // template, e.g. /users/{user_id}
}

interface Node<Op> {
  static: Map<string, Node<Op>>;
  param?: { name: string; node: Node<Op> };
  methods?: Map<string, Op>;
}

export type MatchResult<Op> =
  | { kind: 'found'; operation: Op; params: Record<string, string> }
  | { kind: 'notFound' }
  | { kind: 'methodNotAllowed'; allowed: string[] };

function newNode<Op>(): Node<Op> {
  return { static: new Map() };
}

function segmentsOf(path: string): string[] {
  // Trailing slashes are not significant: /topics and /topics/ are one route.
  return path.split('/').filter((s, i, all) => s !== '' || (i > 0 && i < all.length - 1));
}

export class OperationMatcher<Op extends RoutedOperation> {
  private readonly root: Node<Op> = newNode();

  constructor(operations: readonly Op[]) {
    for (const op of operations) this.add(op);
  }

  private add(op: Op): void {
    let node = this.root;
    for (const seg of segmentsOf(op.path)) {
      const m = /^\{([^}]+)\}$/.exec(seg);
      if (m) {
        if (node.param && node.param.name !== m[1]) {
          throw new Error(
            `Path ${op.path}: parameter {${m[1]}} clashes with {${node.param.name}} at the same position`,
          );
        }
        node.param ??= { name: m[1], node: newNode() };
        node = node.param.node;
      } else {
        let next = node.static.get(seg);
        if (!next) node.static.set(seg, (next = newNode()));
        node = next;
      }
    }
    node.methods ??= new Map();
    if (node.methods.has(op.method)) throw new Error(`Duplicate route ${op.method.toUpperCase()} ${op.path}`);
    node.methods.set(op.method, op);
  }

  match(method: string, path: string): MatchResult<Op> {
    const segs = segmentsOf(path);
    const params: Record<string, string> = {};
    const node = this.walk(this.root, segs, 0, params);
    if (!node) return { kind: 'notFound' };
    const op = node.methods!.get(method.toLowerCase());
    if (!op) return { kind: 'methodNotAllowed', allowed: [...node.methods!.keys()].map((m) => m.toUpperCase()) };
    return { kind: 'found', operation: op, params };
  }

  private walk(node: Node<Op>, segs: string[], i: number, params: Record<string, string>): Node<Op> | undefined {
    if (i === segs.length) return node.methods ? node : undefined;
    const seg = segs[i];
    const next = node.static.get(seg);
    if (next) {
      const found = this.walk(next, segs, i + 1, params);
      if (found) return found;
    }
    if (node.param && seg !== '') {
      let value: string;
      try {
        value = decodeURIComponent(seg);
      } catch {
        value = seg; // not percent-encoded UTF-8: kept as sent, for validation to judge (as Starlette does)
      }
      const found = this.walk(node.param.node, segs, i + 1, params);
      if (found) {
        params[node.param.name] = value;
        return found;
      }
    }
    return undefined;
  }
}
