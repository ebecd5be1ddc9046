// The Uploads API through the official OpenAI Node SDK (uploads.create, uploads.parts.create,
// uploads.complete) and through curl, against a real aqueductd.
//
// On the embedded default store (filesystem beside SQLite) the SDK sends a 300 MiB file in
// 64 MiB parts, all at once and out of order; the download must be byte-exact (length and
// SHA-256 of the stream) and the gateway's peak RSS (VmHWM) must grow by less than 64 MiB, far
// below the file (that run is labelled "rss" in CTest: under ASan the figure would be ASan's
// shadow memory and quarantine, so stage 2 leaves it out). On the other stores
// (AQ_CONFORMANCE_STORE) the same flow runs on 24 MiB without the memory bound, which so small a
// file could not show; tests/files/uploads_api_test.cpp covers every store in detail.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readdirSync, readFileSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startGateway } from './gateway.mjs';

const MiB = 1 << 20;
const PART = 64 * MiB;
const store = process.env.AQ_CONFORMANCE_STORE ?? 'filesystem';
const LARGE = store === 'filesystem';
const TOTAL = LARGE ? 300 * MiB : 24 * MiB;

// Writes `bytes` of a non-repeating pattern to `path`; returns its SHA-256 and MD5.
function writePattern(path, bytes) {
  const sha = createHash('sha256'), md5 = createHash('md5');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(MiB);
  for (let written = 0, n = 0; written < bytes; n++) {
    for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((n * 2654435761 + i * 40503) >>> 0, i);
    const piece = block.subarray(0, Math.min(block.length, bytes - written));
    writeSync(fd, piece);
    sha.update(piece);
    md5.update(piece);
    written += piece.length;
  }
  closeSync(fd);
  return { sha256: sha.digest('hex'), md5: md5.digest('hex') };
}

// The gateway's process: the aqueductd whose command line names this instance's config.
function gatewayPid(gw) {
  const config = join(gw.dir, 'aqueduct.json');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(config)) return Number(entry);
    } catch { /* gone meanwhile */ }
  }
  throw new Error(`no aqueductd with ${config}`);
}

const vmHwmKiB = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/)[1]);

describe(`uploads through the OpenAI Node SDK (${store} store)`, () => {
  let gw, alice, bob;
  before(async () => {
    gw = await startGateway({ plugins: { files: { enabled: true, purposes: ['batch', 'user_data'] } } });
    alice = new OpenAI({ apiKey: gw.tokens.alice, baseURL: `${gw.baseURL}/v1`, maxRetries: 0, timeout: 600000 });
    bob = new OpenAI({ apiKey: gw.tokens.bob, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
  });
  after(async () => gw?.stop());

  test('a_large_file_in_parallel_out_of_order_parts_is_byte_exact_in_constant_memory', async () => {
    const path = join(gw.dir, 'big.bin');
    const digest = writePattern(path, TOTAL);
    const pid = gatewayPid(gw);
    const hwmBefore = vmHwmKiB(pid);

    const upload = await alice.uploads.create({
      bytes: TOTAL, filename: 'big.bin', mime_type: 'application/octet-stream', purpose: 'user_data',
    });
    assert.match(upload.id, /^upload_[0-9A-Za-z]{24}$/);
    assert.equal(upload.object, 'upload');
    assert.equal(upload.status, 'pending');
    assert.equal(upload.expires_at, upload.created_at + 3600);
    assert.equal(upload.file, null);

    // Parts from disk (each a ranged read stream), sent at once, the last first.
    const ranges = [];
    for (let start = 0; start < TOTAL; start += PART) ranges.push([start, Math.min(start + PART, TOTAL) - 1]);
    const order = ranges.map((_, i) => i).reverse();
    const parts = new Array(ranges.length);
    await Promise.all(order.map(async (i) => {
      const [start, end] = ranges[i];
      parts[i] = await alice.uploads.parts.create(upload.id, { data: createReadStream(path, { start, end }) });
    }));
    for (const p of parts) {
      assert.match(p.id, /^part_[0-9A-Za-z]{24}$/);
      assert.equal(p.object, 'upload.part');
      assert.equal(p.upload_id, upload.id);
    }

    const done = await alice.uploads.complete(upload.id, { part_ids: parts.map((p) => p.id), md5: digest.md5 });
    assert.equal(done.status, 'completed');
    assert.equal(done.file.object, 'file');
    assert.equal(done.file.bytes, TOTAL);
    assert.equal(done.file.filename, 'big.bin');
    assert.equal(done.file.purpose, 'user_data');

    const response = await alice.files.content(done.file.id);
    const sha = createHash('sha256');
    let length = 0;
    for await (const chunk of response.body) {
      sha.update(chunk);
      length += chunk.length;
    }
    assert.equal(length, TOTAL);
    assert.equal(sha.digest('hex'), digest.sha256);

    const growthMiB = (vmHwmKiB(pid) - hwmBefore) / 1024;
    console.log(`gateway VmHWM grew by ${growthMiB.toFixed(1)} MiB over ${TOTAL / MiB} MiB uploaded in parts and downloaded`);
    if (LARGE) assert.ok(growthMiB < 64, `VmHWM grew by ${growthMiB} MiB`);
  });

  test('sdk_errors_carry_the_status_and_envelope', async () => {
    const upload = await alice.uploads.create({
      bytes: 10, filename: 'ten.bin', mime_type: 'application/octet-stream', purpose: 'user_data',
    });
    const part = await alice.uploads.parts.create(upload.id, { data: new File(['0123456789'], 'x') });
    await assert.rejects(bob.uploads.complete(upload.id, { part_ids: [part.id] }),
      (e) => e.status === 404 && e.error.message === `No such Upload object: ${upload.id}` && e.error.param === 'upload_id');
    await assert.rejects(alice.uploads.complete(upload.id, { part_ids: [part.id, part.id] }),
      (e) => e.status === 400 && e.error.param === 'part_ids');
    const done = await alice.uploads.complete(upload.id, { part_ids: [part.id] });
    assert.equal(done.file.bytes, 10);
    await assert.rejects(alice.uploads.complete(upload.id, { part_ids: [part.id] }),
      (e) => e.status === 400 && e.error.message === `Cannot complete the Upload ${upload.id}: its status is 'completed'.`);

    const other = await alice.uploads.create({
      bytes: 10, filename: 'ten.bin', mime_type: 'application/octet-stream', purpose: 'user_data',
    });
    const cancelled = await alice.uploads.cancel(other.id);
    assert.equal(cancelled.status, 'cancelled');
    await assert.rejects(alice.uploads.parts.create(other.id, { data: new File(['x'], 'x') }),
      (e) => e.status === 400 && e.error.message === `Cannot add a part to the Upload ${other.id}: its status is 'cancelled'.`);
  });
});

describe(`uploads through curl (${store} store)`, () => {
  let gw, curl, auth;
  before(async () => {
    gw = await startGateway({ plugins: { files: { enabled: true, purposes: ['batch', 'user_data'] } } });
    auth = `Authorization: Bearer ${gw.tokens.alice}`;
    curl = (...args) => execFileSync('curl', ['-sS', ...args], { cwd: gw.dir, maxBuffer: 1 << 30 }).toString();
  });
  after(async () => gw?.stop());

  test('create_parts_complete_download', () => {
    const content = Buffer.alloc(6 * MiB + 321);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 10)) & 0xff;
    writeFileSync(join(gw.dir, 'part1.bin'), content.subarray(0, 4 * MiB));
    writeFileSync(join(gw.dir, 'part2.bin'), content.subarray(4 * MiB));
    const upload = JSON.parse(curl(`${gw.baseURL}/v1/uploads`, '-H', auth, '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ purpose: 'user_data', filename: 'data.bin', bytes: content.length, mime_type: 'application/octet-stream' })));
    assert.equal(upload.status, 'pending');
    // The second part first.
    const p2 = JSON.parse(curl(`${gw.baseURL}/v1/uploads/${upload.id}/parts`, '-H', auth, '-F', 'data=@part2.bin'));
    const p1 = JSON.parse(curl(`${gw.baseURL}/v1/uploads/${upload.id}/parts`, '-H', auth, '-F', 'data=@part1.bin'));
    assert.equal(p1.object, 'upload.part');
    const md5 = createHash('md5').update(content).digest('hex');
    const done = JSON.parse(curl(`${gw.baseURL}/v1/uploads/${upload.id}/complete`, '-H', auth,
      '-H', 'Content-Type: application/json', '-d', JSON.stringify({ part_ids: [p1.id, p2.id], md5 })));
    assert.equal(done.status, 'completed');
    assert.equal(done.file.bytes, content.length);
    curl(`${gw.baseURL}/v1/files/${done.file.id}/content`, '-H', auth, '-o', 'out.bin');
    assert.ok(readFileSync(join(gw.dir, 'out.bin')).equals(content));
  });

  test('a_wrong_total_is_a_400_in_the_envelope', () => {
    writeFileSync(join(gw.dir, 'small.bin'), 'abc');
    const upload = JSON.parse(curl(`${gw.baseURL}/uploads`, '-H', auth, '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ purpose: 'user_data', filename: 'small.bin', bytes: 4, mime_type: 'text/plain' })));
    const part = JSON.parse(curl(`${gw.baseURL}/uploads/${upload.id}/parts`, '-H', auth, '-F', 'data=@small.bin'));
    const out = curl(`${gw.baseURL}/uploads/${upload.id}/complete`, '-H', auth, '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ part_ids: [part.id] }), '-w', '\n%{http_code}');
    const [body, status] = out.split('\n');
    assert.equal(status, '400');
    assert.deepEqual(JSON.parse(body), { error: {
      message: "The parts total 3 bytes, but the Upload was created with 'bytes' 4.",
      type: 'invalid_request_error', param: 'part_ids', code: null } });
  });
});
