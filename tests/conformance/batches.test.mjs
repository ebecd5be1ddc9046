// The Batch API through the official OpenAI Node SDK: create, poll, download output and error
// files, list, cancel, and the error classes, against a real aqueductd whose batches plugin
// calls the fake OpenAI-compatible upstream of tests/batches (it stands for vLLM or OpenAI).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { required, startGateway, startProcess } from './gateway.mjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BATCH_KEYS = ['cancelled_at', 'cancelling_at', 'completed_at', 'completion_window', 'created_at', 'endpoint',
  'error_file_id', 'errors', 'expired_at', 'expires_at', 'failed_at', 'finalizing_at', 'id', 'in_progress_at',
  'input_file_id', 'metadata', 'model', 'object', 'output_file_id', 'request_counts', 'status', 'usage'];

// Lines whose body.user is the custom_id: the fake upstream keys its behaviour and counts on it.
function input(n, prefix) {
  let out = '';
  for (let i = 1; i <= n; i++) {
    const id = `${prefix}-${i}`;
    out += JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions',
      body: { model: 'test-model', user: id, messages: [{ role: 'user', content: `hello ${i}` }] } }) + '\n';
  }
  return out;
}

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

async function waitFor(client, id, predicate, timeoutMs = 60000) {
  const started = Date.now();
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (predicate(b)) return b;
    if (Date.now() - started > timeoutMs) throw new Error(`batch ${id} still ${b.status}: ${JSON.stringify(b)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lines = async (client, fileId) =>
  (await (await client.files.content(fileId)).text()).split('\n').filter((l) => l).map((l) => JSON.parse(l));

describe('batches through the OpenAI Node SDK', () => {
  let gw, upstream, alice, bob;
  const control = (path, body) => fetch(`http://127.0.0.1:${upstream.port}${path}`,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aq-upstream-'));
    upstream = await startProcess(required('FAKE_UPSTREAM'), ['0'], {}, /listening on http:\/\/127\.0\.0\.1:(\d+)/, dir);
    gw = await startGateway({
      plugins: {
        files: { enabled: true },
        batches: {
          enabled: true, requires: ['files'], poll_interval_ms: 50, backoff_initial_ms: 50,
          upstreams: [{ name: 'fake', base_url: `http://127.0.0.1:${upstream.port}/v1`, models: ['test-model'],
            max_concurrency: 4, timeout_seconds: 30 }],
        },
      },
    });
    alice = new OpenAI({ apiKey: gw.tokens.alice, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
    bob = new OpenAI({ apiKey: gw.tokens.bob, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    upstream?.child.kill('SIGTERM');
  });

  test('a_batch_runs_to_completed_with_output_in_input_order', async () => {
    await control('/_config', { latency_ms: 0, rules: { 'ok-7': { mode: 'status', status: 400 } } });
    const file = await alice.files.create({ file: await toFile(Buffer.from(input(12, 'ok')), 'in.jsonl'), purpose: 'batch' });
    const created = await alice.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions',
      completion_window: '24h', metadata: { project: 'conformance' } });
    assert.deepEqual(Object.keys(created).sort(), BATCH_KEYS);
    assert.match(created.id, /^batch_[0-9A-Za-z]{24}$/);
    assert.equal(created.object, 'batch');
    assert.equal(created.status, 'validating');
    assert.equal(created.input_file_id, file.id);
    assert.equal(created.expires_at, created.created_at + 24 * 3600);
    assert.deepEqual(created.request_counts, { total: 0, completed: 0, failed: 0 });
    assert.deepEqual(created.metadata, { project: 'conformance' });

    const done = await waitFor(alice, created.id, (b) => TERMINAL.has(b.status));
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.request_counts, { total: 12, completed: 11, failed: 1 });
    for (const k of ['in_progress_at', 'finalizing_at', 'completed_at']) assert.ok(Number.isInteger(done[k]), k);
    assert.equal(done.usage.input_tokens, 110);
    assert.equal(done.usage.output_tokens, 55);
    assert.equal(done.usage.total_tokens, 165);

    const out = await lines(alice, done.output_file_id);
    assert.deepEqual(out.map((l) => l.custom_id), [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12].map((i) => `ok-${i}`));
    for (const l of out) {
      assert.match(l.id, /^batch_req_[0-9A-Za-z]{24}$/);
      assert.equal(l.error, null);
      assert.equal(l.response.status_code, 200);
      assert.equal(l.response.body.choices[0].message.content, `echo ${l.custom_id}`);
    }
    const errors = await lines(alice, done.error_file_id);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].custom_id, 'ok-7');
    assert.equal(errors[0].response.status_code, 400);
    assert.equal(errors[0].error, null);

    const outFile = await alice.files.retrieve(done.output_file_id);
    assert.equal(outFile.purpose, 'batch_output');
    const listed = [];
    for await (const b of alice.batches.list({ limit: 1 })) listed.push(b.id);
    assert.ok(listed.includes(created.id));
    await assert.rejects(bob.batches.retrieve(created.id), OpenAI.NotFoundError);
    await assert.rejects(bob.files.content(done.output_file_id), OpenAI.NotFoundError);
  });

  test('cancel_stops_new_requests_and_keeps_partial_results', async () => {
    await control('/_config', { latency_ms: 400, rules: {} });
    const file = await alice.files.create({ file: await toFile(Buffer.from(input(40, 'slow')), 'slow.jsonl'), purpose: 'batch' });
    const created = await alice.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitFor(alice, created.id, (b) => b.status === 'in_progress' && b.request_counts.completed > 0);
    const cancelling = await alice.batches.cancel(created.id);
    assert.equal(cancelling.status, 'cancelling');
    assert.ok(Number.isInteger(cancelling.cancelling_at));
    const done = await waitFor(alice, created.id, (b) => TERMINAL.has(b.status));
    assert.equal(done.status, 'cancelled');
    assert.ok(Number.isInteger(done.cancelled_at));
    assert.ok(done.request_counts.completed < 40, JSON.stringify(done.request_counts));
    const out = await lines(alice, done.output_file_id);
    assert.equal(out.length, done.request_counts.completed);
    await assert.rejects(alice.batches.cancel(created.id), (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
    await control('/_config', { latency_ms: 0 });
  });

  test('create_errors_use_the_sdk_error_classes', async () => {
    await assert.rejects(alice.batches.create({ input_file_id: 'file-000000000000000000000000',
      endpoint: '/v1/chat/completions', completion_window: '24h' }), OpenAI.NotFoundError);
    const file = await alice.files.create({ file: await toFile(Buffer.from(input(1, 'e')), 'e.jsonl'), purpose: 'batch' });
    await assert.rejects(alice.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions',
      completion_window: '48h' }), (e) => e instanceof OpenAI.BadRequestError && e.error.param === 'completion_window');
    await assert.rejects(alice.batches.create({ input_file_id: file.id, endpoint: '/v1/nope',
      completion_window: '24h' }), (e) => e instanceof OpenAI.BadRequestError && e.error.param === 'endpoint');
    await assert.rejects(alice.batches.retrieve('batch_000000000000000000000000'), OpenAI.NotFoundError);
  });
});
