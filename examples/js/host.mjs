// A small synchronous extconn host for Node: the component (transpiled by jco into gen/extconn/)
// decides everything; this file only keeps an in-memory catalog, stores objects for
// nodelocal:// under a local directory, and answers the component's requests.
//
//   const host = createHost({ externDir: '/tmp/x/extern' });
//   const results = host.run("SHOW EXTERNAL CONNECTIONS", { user: 'root' });

import { readFileSync, writeFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { instantiate } from './gen/extconn/extconn.js';

// Compiled once per process; instantiated per host, and again after a trap (a trapped instance
// is never reused, as in the Rust host).
const coreModules = new Map();
function getCoreModule(name) {
  let module = coreModules.get(name);
  if (!module) {
    module = new WebAssembly.Module(readFileSync(new URL(`./gen/extconn/${name}`, import.meta.url)));
    coreModules.set(name, module);
  }
  return module;
}

/** A fresh instance of the component: `{ connections, types }`. It has no imports. */
export function instantiateComponent() {
  return instantiate(getCoreModule, {});
}

/** A statement that failed: the component's `error` record as a JS exception. */
export class SqlError extends Error {
  constructor(error, results = []) {
    super(error.message);
    this.name = 'SqlError';
    this.kind = error.kind;
    this.sqlstate = error.sqlstate;
    this.detail = error.detail;
    this.hint = error.hint;
    /** The results of the statements before the failing one. */
    this.results = results;
  }
}

/** An answer to one request that failed (`io-failed`); thrown inside the host, never escapes. */
class IoFailure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Creates a host over an empty catalog holding `root` (a member of role `admin`).
 *
 * @param {object} options
 * @param {string} options.externDir where nodelocal:// objects live (the node's external-IO dir)
 * @param {string} [options.nodeId] this node's id in nodelocal://<id>/ URIs (default "1")
 * @param {() => bigint} [options.now] the clock, in microseconds since the Unix epoch
 * @param {(requests: object[]) => void} [options.onIo] called with each `io` step's requests
 *   before they are performed (tracing, tests)
 */
export function createHost({ externDir, nodeId = '1', now = () => BigInt(Date.now()) * 1000n, onIo }) {
  externDir = resolve(externDir);
  let component = null;
  let catalog = emptyCatalog();

  // ---- the catalog ---------------------------------------------------------------------------

  function principal(name) {
    const p = catalog.principals.get(name);
    if (!p) return undefined;
    // Every role reachable through memberships, each once.
    const memberOf = [];
    const adminOf = [];
    const queue = [name];
    while (queue.length) {
      const member = queue.shift();
      for (const m of catalog.memberships) {
        if (m.member !== member) continue;
        if (m.admin && member === name && !adminOf.includes(m.role)) adminOf.push(m.role);
        if (m.role !== name && !memberOf.includes(m.role)) {
          memberOf.push(m.role);
          queue.push(m.role);
        }
      }
    }
    const holders = new Set([name, ...memberOf]);
    const systemGrants = catalog.grants.filter((g) => g.object.tag === 'system' && holders.has(g.grantee));
    const roles = catalog.memberships.filter((m) => m.member === name).map((m) => m.role).sort();
    return { name, isRole: p.isRole, canLogin: p.canLogin, roles, memberOf, adminOf, systemGrants };
  }

  const sameObject = (a, b) => a.tag === b.tag && a.val === b.val;
  const sameGrantRow = (a, b) =>
    sameObject(a.object, b.object) && a.grantee === b.grantee && a.privilege === b.privilege;
  const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

  /** Applies `mutations` to a copy; the copy replaces the catalog only if every one succeeded. */
  function apply(mutations) {
    const next = structuredClone(catalog);
    for (const [index, { tag, val }] of mutations.entries()) {
      switch (tag) {
        case 'insert-connection':
          if (next.connections.has(val.name)) return { tag: 'err', val: { index } };
          next.connections.set(val.name, val);
          break;
        case 'update-connection': {
          const stored = next.connections.get(val.connection.name);
          if (!stored || stored.version !== val.expectedVersion) return { tag: 'err', val: { index } };
          next.connections.set(val.connection.name, val.connection);
          break;
        }
        case 'delete-connection':
          next.connections.delete(val);
          next.grants = next.grants.filter((g) => !sameObject(g.object, { tag: 'connection', val }));
          break;
        case 'put-grant':
          next.grants = next.grants.filter((g) => !sameGrantRow(g, val)).concat([val]);
          break;
        case 'delete-grant':
          next.grants = next.grants.filter((g) => !sameGrantRow(g, val));
          break;
        case 'insert-principal':
          if (next.principals.has(val.name)) return { tag: 'err', val: { index } };
          next.principals.set(val.name, { isRole: val.isRole, canLogin: val.canLogin });
          break;
        case 'delete-principal':
          next.principals.delete(val);
          next.memberships = next.memberships.filter((m) => m.role !== val && m.member !== val);
          break;
        case 'put-membership': {
          const [role, member, admin] = val;
          next.memberships = next.memberships
            .filter((m) => !(m.role === role && m.member === member))
            .concat([{ role, member, admin }]);
          break;
        }
        case 'delete-membership': {
          const [role, member] = val;
          next.memberships = next.memberships.filter((m) => !(m.role === role && m.member === member));
          break;
        }
        // This host runs no jobs: there is none to cancel, and no connection is in use.
        case 'cancel-job':
        case 'require-unused-connection':
          break;
        default:
          throw new IoFailure('unsupported', `this host cannot apply a ${tag} mutation`);
      }
    }
    catalog = next;
    return { tag: 'ok', val: undefined };
  }

  // ---- nodelocal storage ---------------------------------------------------------------------

  /** The local directory behind a target; only nodelocal:// on this node is served. */
  function directory(target) {
    if (target.scheme !== 'nodelocal') {
      throw new IoFailure('unsupported', `this host does not serve ${target.scheme} storage`);
    }
    if (target.host !== nodeId && target.host !== 'self') {
      throw new IoFailure('unavailable', `node ${target.host} is not reachable from this host (node ${nodeId})`);
    }
    return within(externDir, target.path);
  }

  /** `base/rel`, refusing anything that climbs out of `base`. */
  function within(base, rel) {
    const full = resolve(base, rel);
    if (full !== base && !full.startsWith(base + sep)) {
      throw new IoFailure('permission-denied', `path ${JSON.stringify(rel)} is outside the external I/O directory`);
    }
    return full;
  }

  /** Every file under `dir`, as keys relative to it (`/`-separated), sorted. */
  function walk(dir) {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true, recursive: true });
    } catch (e) {
      if (e.code === 'ENOENT') return [];
      throw e;
    }
    return entries
      .filter((d) => d.isFile())
      .map((d) => {
        const full = join(d.parentPath ?? d.path, d.name);
        return { key: relative(dir, full).split(sep).join('/'), size: BigInt(statSync(full).size) };
      })
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  function list({ target, prefix, delimiter }) {
    const objects = walk(directory(target)).filter((o) => o.key.startsWith(prefix));
    if (delimiter === undefined) return objects;
    // With a delimiter, everything below the next delimiter collapses into one common prefix.
    const out = new Map();
    for (const o of objects) {
      const cut = o.key.indexOf(delimiter, prefix.length);
      const key = cut < 0 ? o.key : o.key.slice(0, cut + delimiter.length);
      if (!out.has(key)) out.set(key, cut < 0 ? o : { key, size: 0n });
    }
    return [...out.values()];
  }

  // ---- requests ------------------------------------------------------------------------------

  function perform(request) {
    const { tag, val } = request;
    switch (tag) {
      case 'read-principal':
        return { tag: 'principal', val: principal(val) };
      case 'read-connection':
        return { tag: 'connection', val: catalog.connections.get(val) };
      case 'list-connections':
        return { tag: 'connections', val: [...catalog.connections.values()].sort(byName) };
      case 'read-grants':
        return { tag: 'grants', val: catalog.grants.filter((g) => sameObject(g.object, val)) };
      case 'read-grants-of':
        return { tag: 'grants', val: catalog.grants.filter((g) => g.grantee === val) };
      case 'list-principals':
        return {
          tag: 'principals',
          val: [...catalog.principals.keys()].sort().map((name) => principal(name)),
        };
      case 'apply':
        return { tag: 'applied', val: apply(val) };
      case 'object-put': {
        const file = within(directory(val.target), val.key);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, val.data);
        return { tag: 'done' };
      }
      case 'object-get': {
        const file = within(directory(val.target), val.key);
        return { tag: 'data', val: new Uint8Array(readFileSync(file)) };
      }
      case 'object-list':
        return { tag: 'objects', val: list(val) };
      case 'object-delete':
        // Deleting what is not there succeeds, as on S3.
        rmSync(within(directory(val.target), val.key), { force: true });
        return { tag: 'done' };
      case 'now':
        return { tag: 'now', val: now() };
      case 'random':
        // Salts for password verifiers.
        return { tag: 'data', val: crypto.getRandomValues(new Uint8Array(val)) };
      case 'list-dependents':
        // No jobs run here, so nothing depends on a connection (WIT 0.2.0).
        return { tag: 'dependents', val: [] };
      default:
        // sink-probe, kms-encrypt, kms-decrypt, and whatever a later WIT version adds.
        throw new IoFailure('unsupported', `this host cannot perform ${tag} requests`);
    }
  }

  /** One response per request: a failure becomes `io-failed`, never an exception. */
  function answer(request) {
    try {
      return perform(request);
    } catch (e) {
      // Messages name the request and the key, never a URI: URIs carry secrets.
      const failure = e instanceof IoFailure ? e : ioFailureFrom(e, request);
      return { tag: 'io-failed', val: { kind: failure.kind, message: failure.message } };
    }
  }

  // ---- statements ----------------------------------------------------------------------------

  /**
   * Runs one or more `;`-separated statements as `user`.
   *
   * @returns {Array<{outcome, notices}>} one `statement-result` per statement
   * @throws {SqlError} at the first statement that fails (earlier results in `error.results`)
   */
  function run(sql, { user = 'root', database, validation = 'full' } = {}) {
    component ??= instantiateComponent();
    const { Statement } = component.connections;
    const results = [];
    let statement;
    try {
      statement = new Statement({ user, database, validation }, sql);
      let responses = [];
      for (;;) {
        const step = statement.resume(responses);
        switch (step.tag) {
          case 'io':
            onIo?.(step.val);
            responses = step.val.map(answer);
            break;
          case 'finished':
            responses = [];
            if (step.val.tag === 'err') throw new SqlError(step.val.val, results);
            results.push(step.val.val);
            break;
          case 'end':
            return results;
          default:
            throw new Error(`unknown step ${step.tag}`);
        }
      }
    } catch (e) {
      if (e instanceof SqlError) throw e;
      // A trap (or a bug in this host): the instance is not used again; the next run gets a
      // fresh one, as in the Rust host.
      component = null;
      statement = undefined;
      throw new SqlError({ kind: 'internal', sqlstate: 'XX000', message: `internal error: ${e.message}` }, results);
    } finally {
      statement?.[Symbol.dispose]();
    }
  }

  return {
    run,
    externDir,
    /** The component's pure exports (`parseUri`, `redactUri`, `resolve`, `version`, …). */
    get connections() {
      component ??= instantiateComponent();
      return component.connections;
    },
    /** Adds a user or role; `memberOf` lists roles it joins directly. */
    addPrincipal({ name, isRole = false, canLogin = !isRole, memberOf = [] }) {
      const mutations = [{ tag: 'insert-principal', val: { name, isRole, canLogin } }];
      for (const role of memberOf) mutations.push({ tag: 'put-membership', val: [role, name, false] });
      if (apply(mutations).tag !== 'ok') throw new Error(`principal ${name} exists already`);
    },
    /** Adds a grant row (`{ object: { tag: 'system' } | { tag: 'connection', val }, grantee, privilege }`). */
    grant({ object, grantee, privilege, grantable = false }) {
      apply([{ tag: 'put-grant', val: { object, grantee, privilege, grantable } }]);
    },
    /** A snapshot of the catalog, for tests. */
    catalog: () => structuredClone(catalog),
  };
}

function emptyCatalog() {
  return {
    principals: new Map([
      ['root', { isRole: false, canLogin: true }],
      ['admin', { isRole: true, canLogin: false }],
    ]),
    memberships: [{ role: 'admin', member: 'root', admin: true }],
    connections: new Map(),
    grants: [],
  };
}

/** A filesystem error as an `io-error` of the right kind. */
function ioFailureFrom(e, request) {
  const kind =
    {
      ENOENT: 'not-found',
      ENOTDIR: 'not-found',
      EACCES: 'permission-denied',
      EPERM: 'permission-denied',
      EROFS: 'permission-denied',
    }[e.code] ?? 'unavailable';
  const key = request.val?.key === undefined ? '' : ` ${JSON.stringify(request.val.key)}`;
  return new IoFailure(kind, `${request.tag}${key} failed: ${e.code ?? e.message}`);
}
