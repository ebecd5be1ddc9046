// The Files API through the official OpenAI Node SDK and through curl with the commands of
// OpenAI's API reference, against a real aqueductd on SQLite.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { startGateway } from './gateway.mjs';

const WEEK = 7 * 24 * 3600;

// A valid batch input of roughly `bytes` bytes.
export function batchJsonl(lines, pad = 0, prefix = 'req') {
  let out = '';
  for (let i = 1; i <= lines; i++) {
    out += JSON.stringify({
      custom_id: `${prefix}-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${i} ${'x'.repeat(pad)}` }] },
    }) + '\n';
  }
  return out;
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

function assertFileObject(f, { filename, bytes, purpose = 'batch' }) {
  assert.deepEqual(Object.keys(f).sort(),
    ['bytes', 'created_at', 'expires_at', 'filename', 'id', 'object', 'purpose', 'status', 'status_details']);
  assert.match(f.id, /^file-[0-9A-Za-z]{24}$/);
  assert.equal(f.object, 'file');
  assert.equal(f.bytes, bytes);
  assert.equal(f.filename, filename);
  assert.equal(f.purpose, purpose);
  assert.equal(f.status, 'processed');
  assert.equal(f.status_details, null);
  assert.ok(Number.isInteger(f.created_at) && Math.abs(f.created_at - Date.now() / 1000) < 120);
  assert.equal(f.expires_at, f.created_at + WEEK);
}

describe('files through the OpenAI Node SDK', () => {
  let gw, alice, bob, carol;
  before(async () => {
    gw = await startGateway();
    // With /v1, as the SDK documents its base URL; without it below, as curl users write it.
    alice = new OpenAI({ apiKey: gw.tokens.alice, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
    bob = new OpenAI({ apiKey: gw.tokens.bob, baseURL: gw.baseURL, maxRetries: 0 });
    carol = new OpenAI({ apiKey: gw.tokens.carol, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
  });
  after(async () => gw?.stop());

  test('upload_from_a_stream_returns_a_processed_file_object', async () => {
    const path = join(gw.dir, 'stream.jsonl');
    const content = batchJsonl(20);
    writeFileSync(path, content);
    // The SDK sends this as a chunked multipart body with `file` before `purpose`.
    const f = await alice.files.create({ file: createReadStream(path), purpose: 'batch' });
    assertFileObject(f, { filename: 'stream.jsonl', bytes: Buffer.byteLength(content) });
  });

  test('upload_from_a_buffer_then_retrieve_returns_the_same_object', async () => {
    const content = batchJsonl(3);
    const f = await alice.files.create({ file: await toFile(Buffer.from(content), 'buffer.jsonl'), purpose: 'batch' });
    assertFileObject(f, { filename: 'buffer.jsonl', bytes: Buffer.byteLength(content) });
    assert.deepEqual(await alice.files.retrieve(f.id), f);
  });

  test('content_of_a_50_MiB_file_is_byte_exact', async () => {
    // 25,600 lines of 2 KiB: within the default 50,000 requests per file.
    const content = Buffer.from(batchJsonl(25 * 1024, 1950));
    assert.ok(content.length >= 50 * 1024 * 1024);
    const f = await alice.files.create({ file: await toFile(content, 'big.jsonl'), purpose: 'batch' });
    assert.equal(f.bytes, content.length);
    const res = await alice.files.content(f.id);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(res.headers.get('content-length'), String(content.length));
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(body.length, content.length);
    assert.equal(sha256(body), sha256(content));
  });

  test('list_auto_paginates_across_pages_newest_first', async () => {
    const created = [];
    for (let i = 0; i < 5; i++) {
      created.push(await bob.files.create({ file: await toFile(Buffer.from(batchJsonl(1)), `page-${i}.jsonl`), purpose: 'batch' }));
    }
    // Newest first, ties on created_at (same second) broken by id in the same direction.
    const desc = [...created].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1)).map((f) => f.id);
    const first = await bob.files.list({ limit: 2 });
    assert.deepEqual(first.data.map((f) => f.id), desc.slice(0, 2));
    assert.ok(first.hasNextPage());
    const seen = [];
    for await (const f of bob.files.list({ limit: 2 })) seen.push(f.id);
    assert.deepEqual(seen, desc);
    const asc = [];
    for await (const f of bob.files.list({ limit: 2, order: 'asc' })) asc.push(f.id);
    assert.deepEqual(asc, [...desc].reverse());
  });

  test('delete_answers_deleted_and_the_file_is_gone', async () => {
    const f = await alice.files.create({ file: await toFile(Buffer.from(batchJsonl(1)), 'gone.jsonl'), purpose: 'batch' });
    assert.deepEqual(await alice.files.delete(f.id), { id: f.id, object: 'file', deleted: true });
    await assert.rejects(alice.files.retrieve(f.id), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  });

  test('another_owners_file_is_not_found', async () => {
    const f = await alice.files.create({ file: await toFile(Buffer.from(batchJsonl(1)), 'mine.jsonl'), purpose: 'batch' });
    await assert.rejects(bob.files.retrieve(f.id), OpenAI.NotFoundError);
    await assert.rejects(bob.files.content(f.id), OpenAI.NotFoundError);
    await assert.rejects(bob.files.delete(f.id), OpenAI.NotFoundError);
    await assert.rejects(carol.files.retrieve(f.id), OpenAI.NotFoundError);
    assert.equal((await alice.files.retrieve(f.id)).id, f.id);
  });

  test('a_wrong_key_is_an_authentication_error', async () => {
    const stranger = new OpenAI({ apiKey: 'not-a-configured-token', baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
    await assert.rejects(stranger.files.list(), (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError);
      assert.equal(e.status, 401);
      assert.equal(e.code, 'invalid_api_key');
      assert.match(e.headers.get('x-request-id'), /^req_/);
      return true;
    });
  });

  test('a_missing_file_is_not_found', async () => {
    await assert.rejects(alice.files.retrieve('file-000000000000000000000000'), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.equal(e.error.type, 'invalid_request_error');
      return true;
    });
  });

  test('invalid_batch_content_is_a_bad_request_naming_the_line', async () => {
    const content = batchJsonl(1) + '{not json\n';
    await assert.rejects(alice.files.create({ file: await toFile(Buffer.from(content), 'bad.jsonl'), purpose: 'batch' }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.status, 400);
        assert.match(e.message, /line 2/);
        return true;
      });
    const listed = [];
    for await (const f of alice.files.list()) listed.push(f.filename);
    assert.ok(!listed.includes('bad.jsonl'), 'a refused upload must leave nothing behind');
  });

  test('an_unsupported_purpose_is_a_bad_request', async () => {
    await assert.rejects(
      alice.files.create({ file: await toFile(Buffer.from(batchJsonl(1)), 'tune.jsonl'), purpose: 'fine-tune' }),
      (e) => e instanceof OpenAI.BadRequestError && e.error.param === 'purpose');
  });

  test('a_list_limit_out_of_range_is_a_bad_request', async () => {
    await assert.rejects(alice.files.list({ limit: 0 }), OpenAI.BadRequestError);
    await assert.rejects(alice.files.list({ limit: 100000 }), OpenAI.BadRequestError);
  });
});

describe('files with a per-owner quota', () => {
  let gw, alice;
  before(async () => {
    gw = await startGateway({ plugins: { files: { enabled: true, quota_files: 1 } } });
    alice = new OpenAI({ apiKey: gw.tokens.alice, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
  });
  after(async () => gw?.stop());

  test('an_upload_over_the_quota_is_a_413_api_error_and_stores_nothing', async () => {
    await alice.files.create({ file: await toFile(Buffer.from(batchJsonl(1)), 'one.jsonl'), purpose: 'batch' });
    await assert.rejects(alice.files.create({ file: await toFile(Buffer.from(batchJsonl(1)), 'two.jsonl'), purpose: 'batch' }),
      (e) => {
        // The SDK has no class of its own for 413: a plain APIError with the status and envelope.
        assert.ok(e instanceof OpenAI.APIError);
        assert.equal(e.status, 413);
        assert.equal(e.error.param, 'file');
        assert.equal(e.error.code, 'quota_exceeded');
        return true;
      });
    const names = [];
    for await (const f of alice.files.list()) names.push(f.filename);
    assert.deepEqual(names, ['one.jsonl']);
  });
});

describe('files through curl, with the API reference commands', () => {
  let gw, token, curl;
  before(async () => {
    gw = await startGateway();
    token = gw.tokens.alice;
    curl = (...args) => execFileSync('curl', ['-sS', ...args], { cwd: gw.dir, maxBuffer: 1 << 30 });
  });
  after(async () => gw?.stop());

  test('upload_list_retrieve_content_delete', () => {
    const content = batchJsonl(10);
    writeFileSync(join(gw.dir, 'mydata.jsonl'), content);
    const created = JSON.parse(curl(`${gw.baseURL}/v1/files`, '-H', `Authorization: Bearer ${token}`,
      '-F', 'purpose=batch', '-F', 'file=@mydata.jsonl'));
    assertFileObject(created, { filename: 'mydata.jsonl', bytes: Buffer.byteLength(content) });

    const list = JSON.parse(curl(`${gw.baseURL}/v1/files`, '-H', `Authorization: Bearer ${token}`));
    assert.deepEqual(list, { object: 'list', data: [created], first_id: created.id, last_id: created.id, has_more: false });

    const retrieved = JSON.parse(curl(`${gw.baseURL}/v1/files/${created.id}`, '-H', `Authorization: Bearer ${token}`));
    assert.deepEqual(retrieved, created);

    curl(`${gw.baseURL}/v1/files/${created.id}/content`, '-H', `Authorization: Bearer ${token}`, '-o', 'file.jsonl');
    assert.equal(readFileSync(join(gw.dir, 'file.jsonl'), 'utf8'), content);

    const deleted = JSON.parse(curl(`${gw.baseURL}/v1/files/${created.id}`, '-X', 'DELETE',
      '-H', `Authorization: Bearer ${token}`));
    assert.deepEqual(deleted, { id: created.id, object: 'file', deleted: true });
  });

  test('a_large_upload_with_expect_100_continue_and_no_v1_prefix', () => {
    // curl sends Expect: 100-continue for bodies over 1 MiB and waits for the interim answer.
    const content = batchJsonl(4096, 400);
    writeFileSync(join(gw.dir, 'large.jsonl'), content);
    const out = curl(`${gw.baseURL}/files`, '-H', `Authorization: Bearer ${token}`,
      '-F', 'purpose=batch', '-F', 'file=@large.jsonl', '-w', '\n%{http_code}');
    const [body, status] = out.toString().split('\n');
    assert.equal(status, '200');
    assert.equal(JSON.parse(body).bytes, Buffer.byteLength(content));
  });

  test('a_field_sent_twice_is_a_400_naming_it', () => {
    writeFileSync(join(gw.dir, 'twice.jsonl'), batchJsonl(1));
    // A second purpose after the file is refused, never "last one wins".
    const out = curl(`${gw.baseURL}/v1/files`, '-H', `Authorization: Bearer ${token}`,
      '-F', 'purpose=batch', '-F', 'file=@twice.jsonl', '-F', 'purpose=batch', '-w', '\n%{http_code}');
    const [body, status] = out.toString().split('\n');
    assert.equal(status, '400');
    assert.deepEqual(JSON.parse(body), { error: { message: "Duplicate parameter: 'purpose' may be sent only once.",
      type: 'invalid_request_error', param: 'purpose', code: null } });
  });

  test('a_body_that_is_not_multipart_is_415', () => {
    const out = curl(`${gw.baseURL}/v1/files`, '-H', `Authorization: Bearer ${token}`,
      '-H', 'Content-Type: application/json', '-d', '{"purpose":"batch"}', '-w', '\n%{http_code}');
    const [body, status] = out.toString().split('\n');
    assert.equal(status, '415');
    assert.equal(JSON.parse(body).error.type, 'invalid_request_error');
  });

  test('an_error_answers_the_exact_envelope', () => {
    const out = curl(`${gw.baseURL}/v1/files/file-000000000000000000000000`, '-H', `Authorization: Bearer ${token}`,
      '-w', '\n%{http_code}');
    const [body, status] = out.toString().split('\n');
    assert.equal(status, '404');
    const err = JSON.parse(body);
    assert.deepEqual(Object.keys(err), ['error']);
    assert.deepEqual(Object.keys(err.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(err.error.type, 'invalid_request_error');
  });
});
