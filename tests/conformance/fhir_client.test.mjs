// Conformance: the real medcore server driven by a real FHIR client (fhir-kit-client), every
// resource it returns validated against the official R4 JSON schema (spec/fhir-r4/fhir.schema.json)
// with ajv. Run by tests/conformance/run.sh (npm ci into the build tree, then `node --test`).
//
// Environment: MEDCORE_BIN (the binary), MEDCORE_SOURCE_DIR (the repository).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import Client from 'fhir-kit-client';

const require = createRequire(import.meta.url);
const PASSWORD = 'Correct-Horse-42!';
const BIN = process.env.MEDCORE_BIN;
const SRC = process.env.MEDCORE_SOURCE_DIR;
if (!BIN || !fs.existsSync(BIN)) throw new Error(`MEDCORE_BIN must name the medcore binary (got ${BIN})`);
if (!SRC) throw new Error('MEDCORE_SOURCE_DIR must name the repository');

// ---- the schema ----
// The official R4 schema is draft-06 with a root "id" (ajv 8 wants "$id") and two dangling
// references (#/definitions/Resource, #/definitions/integer64); patched here, in memory only.
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'));
addFormats(ajv);
const schema = JSON.parse(fs.readFileSync(path.join(SRC, 'spec/fhir-r4/fhir.schema.json'), 'utf8'));
const SCHEMA_ID = schema.id;
schema.$id = schema.id;
delete schema.id;
delete schema.$schema;
schema.definitions.Resource ??= { $ref: '#/definitions/ResourceList' };
schema.definitions.integer64 ??= { type: 'string', pattern: '^[0]|[-+]?[1-9][0-9]*$' };
ajv.addSchema(schema);
const validateAny = ajv.getSchema(SCHEMA_ID);
let validated = 0;

// Validate a resource (and, for a Bundle, each entry's resource too). Throws with ajv's errors.
function conform(res, what = '') {
  assert.ok(res && typeof res === 'object' && res.resourceType, `${what}: a FHIR resource`);
  if (!validateAny(res)) {
    const byType = ajv.getSchema(`${SCHEMA_ID}#/definitions/${res.resourceType}`);
    byType?.(res);
    const errs = (byType?.errors ?? validateAny.errors).slice(0, 5);
    assert.fail(`${what}: ${res.resourceType} does not conform: ${JSON.stringify(errs)}`);
  }
  validated++;
  for (const e of res.entry ?? []) if (e.resource) conform(e.resource, `${what} entry`);
  return res;
}

// ---- the server ----
let proc, tmp, port, token, fhir;
const logs = [];

function medcore(...args) {
  const r = spawnSync(BIN, [...args, '--db', `sqlite:${path.join(tmp, 't.db')}`],
    { input: `${PASSWORD}\n`, encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `medcore ${args.slice(0, 2).join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function startServer() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'medcore-conf-'));
  proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', `sqlite:${path.join(tmp, 't.db')}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const rl = readline.createInterface({ input: proc.stderr });
  port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'listening' line:\n${logs.join('\n')}`)), 15000);
    proc.on('exit', (code) => reject(new Error(`server exited ${code}:\n${logs.join('\n')}`)));
    rl.on('line', (line) => {
      logs.push(line);
      try {
        const j = JSON.parse(line);
        if (j.msg === 'listening' && j.port) { clearTimeout(timer); resolve(j.port); }
      } catch { /* not JSON */ }
    });
  });
}

async function login(username) {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/auth/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(r.status, 200, 'login');
  return (await r.json()).data.access_token;
}

// fhir-kit-client throws { response: { status, data } } on non-2xx answers.
async function status(p) {
  try { await p; return 200; } catch (e) { if (e?.response?.status) return e.response.status; throw e; }
}

describe('medcore FHIR R4 conformance (fhir-kit-client + ajv)', () => {
  before(async () => {
    await startServer();
    medcore('user', 'add', '--username', 'conf.integration', '--role', 'integration', '--password-stdin');
    token = await login('conf.integration');
    fhir = new Client({ baseUrl: `http://127.0.0.1:${port}/fhir`, bearerToken: token });
  });

  after(async () => {
    if (proc && proc.exitCode === null) {
      const done = new Promise((resolve) => proc.on('exit', resolve));
      proc.kill('SIGTERM');
      const code = await done;
      assert.equal(code, 0, 'server exits 0 on SIGTERM');
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    assert.ok(validated > 20, `validated ${validated} resources`);
  });

  const ids = {};

  test('capabilityStatement', async () => {
    const cs = conform(await fhir.capabilityStatement(), 'metadata');
    assert.equal(cs.resourceType, 'CapabilityStatement');
    assert.equal(cs.fhirVersion, '4.0.1');
    assert.ok(cs.rest[0].resource.some((r) => r.type === 'Patient'));
  });

  test('create, read, vread, update, history, delete', async () => {
    const p = conform(await fhir.create({
      resourceType: 'Patient',
      body: { resourceType: 'Patient', name: [{ family: 'Conformance', given: ['Carla'] }], gender: 'female',
        birthDate: '1980-02-29', identifier: [{ system: 'urn:conf:mrn', value: 'C-1' }] },
    }), 'create');
    assert.ok(p.id);
    assert.equal(p.meta.versionId, '1');
    ids.patient = p.id;
    const r = conform(await fhir.read({ resourceType: 'Patient', id: p.id }), 'read');
    assert.deepEqual(r.name, p.name);
    const u = conform(await fhir.update({
      resourceType: 'Patient', id: p.id, body: { ...r, gender: 'other', meta: undefined },
    }), 'update');
    assert.equal(u.meta.versionId, '2');
    const v1 = conform(await fhir.vread({ resourceType: 'Patient', id: p.id, version: '1' }), 'vread');
    assert.equal(v1.gender, 'female');
    const h = conform(await fhir.history({ resourceType: 'Patient', id: p.id }), 'history');
    assert.equal(h.type, 'history');
    assert.equal(h.entry.length, 2);
    const tmpP = await fhir.create({ resourceType: 'Patient', body: { resourceType: 'Patient' } });
    conform(tmpP, 'create');
    await fhir.delete({ resourceType: 'Patient', id: tmpP.id });
    assert.equal(await status(fhir.read({ resourceType: 'Patient', id: tmpP.id })), 410);
    assert.equal(await status(fhir.read({ resourceType: 'Patient', id: 'no-such-id' })), 404);
  });

  test('search with paging (nextPage)', async () => {
    for (let i = 0; i < 7; i++) {
      conform(await fhir.create({
        resourceType: 'Observation',
        body: { resourceType: 'Observation', status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
          subject: { reference: `Patient/${ids.patient}` },
          valueQuantity: { value: 60.5 + i, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } },
      }), 'create observation');
    }
    let page = conform(await fhir.search({
      resourceType: 'Observation', searchParams: { subject: `Patient/${ids.patient}`, _count: 3 },
    }), 'search');
    assert.equal(page.type, 'searchset');
    const seen = new Set();
    let pages = 0;
    while (page) {
      pages++;
      for (const e of page.entry ?? []) seen.add(e.resource.id);
      const next = await fhir.nextPage({ bundle: page });
      page = next ? conform(next, 'next page') : undefined;
      assert.ok(pages < 10, 'paging terminates');
    }
    assert.equal(seen.size, 7);
    assert.equal(pages, 3);
    const byName = conform(await fhir.search({ resourceType: 'Patient', searchParams: { family: 'conform' } }),
      'search by family');
    assert.ok(byName.entry.some((e) => e.resource.id === ids.patient));
  });

  test('$validate', async () => {
    const ok = conform(await fhir.operation({
      name: '$validate', resourceType: 'Patient', input: { resourceType: 'Patient', gender: 'male' },
    }), '$validate ok');
    assert.equal(ok.resourceType, 'OperationOutcome');
    assert.equal(ok.issue[0].severity, 'information');
    const bad = conform(await fhir.operation({
      name: '$validate', resourceType: 'Patient', input: { resourceType: 'Patient', gender: 'robot' },
    }), '$validate bad');
    assert.equal(bad.issue[0].severity, 'error');
  });

  test('$everything', async () => {
    let page = conform(await fhir.operation({
      name: '$everything', resourceType: 'Patient', id: ids.patient, method: 'GET', input: { _count: 4 },
    }), '$everything');
    const types = [];
    while (page) {
      for (const e of page.entry ?? []) types.push(e.resource.resourceType);
      const next = await fhir.nextPage({ bundle: page });
      page = next ? conform(next, '$everything next') : undefined;
    }
    assert.equal(types[0], 'Patient');
    assert.equal(types.filter((t) => t === 'Observation').length, 7);
  });

  // Bundles: batch/transaction are POSTed to the base; fhir-kit-client sends them to "[base]/".
  test('batch', async (t) => {
    const b = conform(await fhir.batch({
      body: { resourceType: 'Bundle', type: 'batch', entry: [
        { request: { method: 'GET', url: `Patient/${ids.patient}` } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
        { resource: { resourceType: 'Patient', name: [{ family: 'Batchy' }] }, request: { method: 'POST', url: 'Patient' } },
      ] },
    }), 'batch');
    assert.equal(b.type, 'batch-response');
    assert.match(b.entry[0].response.status, /^200/);
    assert.match(b.entry[1].response.status, /^404/);
    assert.match(b.entry[2].response.status, /^201/);
  });

  test('transaction', async (t) => {
    const b = conform(await fhir.transaction({
      body: { resourceType: 'Bundle', type: 'transaction', entry: [
        { fullUrl: 'urn:uuid:0b8a7a6e-3c4a-4a7e-9d1e-1d5f1f0c0001',
          resource: { resourceType: 'Patient', name: [{ family: 'Txn' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'weight' },
          subject: { reference: 'urn:uuid:0b8a7a6e-3c4a-4a7e-9d1e-1d5f1f0c0001' } },
          request: { method: 'POST', url: 'Observation' } },
      ] },
    }), 'transaction');
    assert.equal(b.type, 'transaction-response');
    assert.equal(b.entry.length, 2);
    for (const e of b.entry) assert.match(e.response.status, /^201/);
    const obsId = e2id(b.entry[1].response.location);
    const obs = conform(await fhir.read({ resourceType: 'Observation', id: obsId }), 'read txn observation');
    assert.match(obs.subject.reference, /^Patient\/[A-Za-z0-9.-]+$/, 'urn:uuid reference rewritten');
    // a failing entry rolls the whole transaction back
    const before = (await fhir.search({ resourceType: 'Patient', searchParams: { _summary: 'count' } })).total;
    const st = await status(fhir.transaction({
      body: { resourceType: 'Bundle', type: 'transaction', entry: [
        { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'robot' }, request: { method: 'POST', url: 'Patient' } },
      ] },
    }));
    assert.ok(st >= 400, `failing transaction: ${st}`);
    const afterN = (await fhir.search({ resourceType: 'Patient', searchParams: { _summary: 'count' } })).total;
    assert.equal(afterN, before, 'nothing written');
  });
});

function e2id(location) {
  // "Observation/<id>/_history/1" or an absolute URL
  const m = /Observation\/([A-Za-z0-9.-]+)/.exec(location ?? '');
  assert.ok(m, `location ${location}`);
  return m[1];
}
