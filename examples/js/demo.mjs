// The extconn component in Node: pure exports, then CREATE / SHOW / SHOW CREATE / DROP on
// nodelocal:// through the host in host.mjs. Every step is checked; any mismatch exits non-zero.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHost, SqlError } from './host.mjs';

const SENTINEL_NAME = 'crdb_external_storage_location';
const SENTINEL_CONTENT = 'a CockroachDB cluster has been configured to read and write to this location';
// Never printed: every line this demo prints is checked for it at the end.
const CANARY = 'js-canary-secret-5f1c';

const printed = [];
function say(line = '') {
  printed.push(line);
  console.log(line);
}

let passed = 0;
function check(name, fn) {
  fn();
  passed += 1;
  say(`  ok  ${name}`);
}

/** A row's values as plain JS (text as string, int as BigInt, null as null). */
const plain = (rows) => rows.rows.map((row) => row.map((v) => (v.tag === 'null' ? null : v.val)));

function showResult({ outcome, notices }) {
  for (const notice of notices) say(`NOTICE: ${notice}`);
  switch (outcome.tag) {
    case 'command':
      say(outcome.val);
      break;
    case 'rows':
      say(outcome.val.columns.map((c) => c.name).join(' | '));
      for (const row of plain(outcome.val)) say(row.map(String).join(' | '));
      say(`(${outcome.val.rows.length} row${outcome.val.rows.length === 1 ? '' : 's'})`);
      break;
    default:
      say(`${outcome.tag}: ${JSON.stringify(outcome.val, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  }
}

// Statements are echoed through redact(): the input of CREATE may hold a secret.
let redact = (text) => text;

function sql(host, text, session) {
  say(`> ${redact(text)}`);
  const results = host.run(text, session);
  results.forEach(showResult);
  return results;
}

function sqlError(host, text, session) {
  say(`> ${redact(text)}`);
  try {
    const results = host.run(text, session);
    assert.fail(`expected an error, got ${results.length} result(s)`);
  } catch (e) {
    if (!(e instanceof SqlError)) throw e;
    say(`ERROR: ${e.message} (SQLSTATE ${e.sqlstate}, ${e.kind})`);
    return e;
  }
}

function main() {
  const dir = mkdtempSync(join(tmpdir(), 'extconn-js-'));
  try {
    demo(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function demo(dir) {
  // Set by the steps below that watch the requests go by.
  let onIo = null;
  const host = createHost({ externDir: join(dir, 'extern'), onIo: (requests) => onIo?.(requests) });
  const { parseUri, redactUri, redactUris, version } = host.connections;
  say(`extconn component ${version()}`);

  // ---- pure exports ---------------------------------------------------------------------------
  say('\n# parse-uri, redact-uri');
  // AWS's documented example key pair, not a real secret.
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  const s3 = `s3://bucket/backups?AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE&AWS_SECRET_ACCESS_KEY=${encodeURIComponent(secret)}`;
  const redacted = redactUri(s3);
  say(`uri:      ${s3}`);
  say(`redacted: ${redacted}`);
  check('redact-uri hides the secret and keeps the rest', () => {
    assert.ok(!redacted.includes(encodeURIComponent(secret)) && !redacted.includes(secret), redacted);
    assert.equal(redacted, 's3://bucket/backups?AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE&AWS_SECRET_ACCESS_KEY=redacted');
  });
  check('redact-uris is redact-uri for many', () => {
    assert.deepEqual(redactUris([s3, 'nodelocal://1/a']), [redacted, 'nodelocal://1/a']);
  });

  const info = parseUri(s3);
  say(`parse-uri: ${JSON.stringify(info)}`);
  check('parse-uri describes the URI without its secret', () => {
    assert.equal(info.scheme, 's3');
    assert.equal(info.provider, 's3');
    assert.equal(info.connectionType, 'storage');
    assert.equal(info.redacted, redacted);
    assert.ok(!JSON.stringify(info).includes(encodeURIComponent(secret)));
    const param = info.params.find((p) => p.name === 'AWS_SECRET_ACCESS_KEY');
    assert.deepEqual(param, { name: 'AWS_SECRET_ACCESS_KEY', secret: true, value: undefined });
  });
  // A function returning result<T, error> throws on `err`: the error record is `e.payload`.
  check('parse-uri throws for a bad URI, with the error record as payload', () => {
    assert.throws(
      () => parseUri('nodelocal:///foo'),
      (e) => {
        say(`parse-uri error: ${JSON.stringify(e.payload)}`);
        assert.equal(e.payload.kind, 'invalid-argument');
        assert.match(e.payload.message, /host component of nodelocal URI must be a node ID/);
        return true;
      },
    );
  });

  // ---- statements -----------------------------------------------------------------------------
  say('\n# CREATE / SHOW / SHOW CREATE / DROP on nodelocal');
  const root = { user: 'root', validation: 'full' };
  const steps = [];
  onIo = (requests) => steps.push(requests.map((r) => r.tag));
  const [created] = sql(host, "CREATE EXTERNAL CONNECTION backups AS 'nodelocal://1/backups/2024'", root);
  onIo = null;
  say(`(the component asked for: ${steps.map((tags) => `[${tags.join(', ')}]`).join(' → ')})`);
  check('CREATE returns its command tag, after validating before writing the catalog', () => {
    assert.deepEqual(created.outcome, { tag: 'command', val: 'CREATE EXTERNAL CONNECTION' });
    const flat = steps.flat();
    assert.ok(flat.includes('object-put') && flat.indexOf('object-put') < flat.indexOf('apply'), flat.join());
    assert.deepEqual(steps.at(-1), ['apply']);
  });
  const sentinel = join(host.externDir, 'backups', '2024', SENTINEL_NAME);
  check('CREATE left the sentinel in the location', () => {
    assert.ok(existsSync(sentinel), `${sentinel} is missing`);
    assert.equal(readFileSync(sentinel, 'utf8'), SENTINEL_CONTENT);
  });

  const duplicate = sqlError(host, "CREATE EXTERNAL CONNECTION backups AS 'nodelocal://self/other'", root);
  check('a duplicate name is 42710', () => {
    assert.equal(duplicate.sqlstate, '42710');
    assert.equal(duplicate.kind, 'already-exists');
    assert.equal(
      duplicate.message,
      "failed to create external connection: external connection with connection name 'backups' already exists",
    );
  });
  const [skipped] = sql(host, "CREATE EXTERNAL CONNECTION IF NOT EXISTS backups AS 'nodelocal://self/other'", root);
  check('IF NOT EXISTS skips with a notice and touches nothing', () => {
    assert.equal(skipped.notices.length, 1);
    assert.ok(!existsSync(join(host.externDir, 'other')));
  });

  // Another session creates the same name between this one's check and its write: the host's
  // `apply` fails the insert's precondition, and the component reports the duplicate.
  onIo = (requests) => {
    if (requests.some((r) => r.tag === 'apply')) {
      onIo = null;
      host.run("CREATE EXTERNAL CONNECTION raced AS 'nodelocal://1/raced'", { user: 'root', validation: 'parse-only' });
    }
  };
  const raced = sqlError(host, "CREATE EXTERNAL CONNECTION raced AS 'nodelocal://1/raced'", root);
  check("a failed precondition in apply ({ tag: 'err', val: { index } }) is the duplicate error", () => {
    assert.equal(raced.sqlstate, '42710');
    assert.deepEqual([...host.catalog().connections.keys()].sort(), ['backups', 'raced']);
  });
  sql(host, 'DROP EXTERNAL CONNECTION raced', root);

  // A secret-bearing connection, stored without I/O (this host serves no S3).
  const s3Canary = `s3://bucket/archive?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=${CANARY}`;
  redact = (text) => text.replaceAll(s3Canary, redactUri(s3Canary));
  const s3Failed = sqlError(host, `CREATE EXTERNAL CONNECTION archive AS '${s3Canary}'`, root);
  check("full validation against storage this host lacks fails, naming the host's reason", () => {
    assert.equal(s3Failed.kind, 'unsupported');
    assert.match(s3Failed.message, /failed to write a sentinel ExternalStorage file/);
    assert.match(s3Failed.message, /this host does not serve s3 storage/);
  });
  sql(host, `CREATE EXTERNAL CONNECTION archive AS '${s3Canary}'`, { user: 'root', validation: 'parse-only' });

  const [shown] = sql(host, 'SHOW EXTERNAL CONNECTIONS', root);
  check('SHOW EXTERNAL CONNECTIONS lists both, sorted, secrets redacted', () => {
    assert.deepEqual(
      shown.outcome.val.columns.map((c) => [c.name, c.sqlType]),
      [
        ['connection_name', 'STRING'],
        ['connection_uri', 'STRING'],
        ['connection_type', 'STRING'],
      ],
    );
    assert.deepEqual(plain(shown.outcome.val), [
      ['archive', 's3://bucket/archive?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted', 'STORAGE'],
      ['backups', 'nodelocal://1/backups/2024', 'STORAGE'],
    ]);
  });

  const [showCreate] = sql(host, 'SHOW CREATE EXTERNAL CONNECTION backups', root);
  check('SHOW CREATE EXTERNAL CONNECTION gives the statement', () => {
    assert.deepEqual(plain(showCreate.outcome.val), [
      ['backups', "CREATE EXTERNAL CONNECTION 'backups' AS 'nodelocal://1/backups/2024'"],
    ]);
  });

  host.addPrincipal({ name: 'alice' });
  const denied = sqlError(host, "CREATE EXTERNAL CONNECTION mine AS 'nodelocal://1/alice'", {
    user: 'alice',
    validation: 'full',
  });
  check('a user without EXTERNALCONNECTION may not create (42501)', () => {
    assert.equal(denied.sqlstate, '42501');
    assert.equal(denied.kind, 'permission-denied');
  });
  host.grant({ object: { tag: 'system' }, grantee: 'alice', privilege: 'EXTERNALCONNECTION' });
  sql(host, "CREATE EXTERNAL CONNECTION mine AS 'nodelocal://self/alice'", { user: 'alice', validation: 'full' });
  const [aliceSees] = sql(host, 'SHOW EXTERNAL CONNECTIONS', { user: 'alice' });
  check('after GRANT SYSTEM EXTERNALCONNECTION alice creates, and sees only her own', () => {
    assert.equal(readFileSync(join(host.externDir, 'alice', SENTINEL_NAME), 'utf8'), SENTINEL_CONTENT);
    assert.deepEqual(plain(aliceSees.outcome.val), [['mine', 'nodelocal://self/alice', 'STORAGE']]);
  });

  const results = sql(
    host,
    'DROP EXTERNAL CONNECTION backups; DROP EXTERNAL CONNECTION archive; DROP EXTERNAL CONNECTION mine; SHOW EXTERNAL CONNECTIONS',
    root,
  );
  check('DROP removes the connections (several statements in one input)', () => {
    assert.deepEqual(
      results.map((r) => r.outcome.tag),
      ['command', 'command', 'command', 'rows'],
    );
    assert.equal(results[0].outcome.val, 'DROP EXTERNAL CONNECTION');
    assert.deepEqual(plain(results[3].outcome.val), []);
    const catalog = host.catalog();
    assert.equal(catalog.connections.size, 0);
    assert.deepEqual(catalog.grants.filter((g) => g.object.tag === 'connection'), []);
  });
  check('DROP leaves the sentinel in place, as CockroachDB does', () => {
    assert.equal(readFileSync(sentinel, 'utf8'), SENTINEL_CONTENT);
  });

  check('the canary secret never reached any output', () => {
    const leaks = printed.filter((line) => line.includes(CANARY));
    assert.deepEqual(leaks, []);
  });
}

try {
  main();
  console.log(`\ndemo: ${passed} passed, 0 failed`);
} catch (e) {
  console.error(`\nFAILED after ${passed} checks:`, e);
  console.log(`\ndemo: ${passed} passed, 1 failed`);
  process.exitCode = 1;
}
