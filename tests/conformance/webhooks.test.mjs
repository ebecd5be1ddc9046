// Batch webhooks as OpenAI sends them (Standard Webhooks), verified by the official Node SDK's
// webhooks.unwrap() with the configured secret: one event per terminal status, filtered per
// endpoint by owner and event type, and retried until the receiver takes it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { required, startGateway, startProcess } from './gateway.mjs';

const EVENT_KEYS = ['created_at', 'data', 'id', 'object', 'type'];
const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
const secretFor = () => `whsec_${randomBytes(32).toString('base64')}`;

function input(n, prefix, model = 'test-model') {
  let out = '';
  for (let i = 1; i <= n; i++) {
    const id = `${prefix}-${i}`;
    out += JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions',
      body: { model, user: id, messages: [{ role: 'user', content: `hello ${i}` }] } }) + '\n';
  }
  return out;
}

// An endpoint that records every delivery; it answers 500 to the next `failNext` of them.
async function startReceiver() {
  const r = { deliveries: [], failNext: 0, answers: [] };
  r.server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const status = r.failNext > 0 ? (r.failNext--, 500) : 200;
      r.deliveries.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString(), status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'not now');
    });
  });
  await new Promise((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${r.server.address().port}/hooks/openai`;
  r.close = () => new Promise((resolve) => r.server.close(resolve));
  return r;
}

async function until(what, predicate, timeoutMs = 30000) {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function finished(client, id) {
  for (const started = Date.now(); ;) {
    const b = await client.batches.retrieve(id);
    if (TERMINAL.has(b.status)) return b;
    if (Date.now() - started > 60000) throw new Error(`batch ${id} still ${b.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('batch webhooks through the OpenAI Node SDK', () => {
  let gw, upstream, everything, bobFailures, alice, bob;
  const secrets = { everything: secretFor(), bobFailures: secretFor() };
  const control = (path, body) => fetch(`http://127.0.0.1:${upstream.port}${path}`,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  const create = async (client, content) => {
    const file = await client.files.create({ file: await toFile(Buffer.from(content), 'in.jsonl'), purpose: 'batch' });
    return client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  };
  // Unwraps one delivery with the SDK and checks the event against the headers and the batch.
  const unwrap = async (delivery, secret, type, batchId) => {
    const sdk = new OpenAI({ apiKey: 'unused', webhookSecret: secret });
    const event = await sdk.webhooks.unwrap(delivery.body, delivery.headers);
    assert.deepEqual(Object.keys(event).sort(), EVENT_KEYS);
    assert.equal(event.id, delivery.headers['webhook-id']);
    assert.match(event.id, /^evt_[0-9A-Za-z]{24}$/);
    assert.equal(event.object, 'event');
    assert.equal(event.type, type);
    assert.deepEqual(event.data, { id: batchId });
    assert.ok(Number.isInteger(event.created_at) && Math.abs(event.created_at - Date.now() / 1000) < 120);
    assert.equal(delivery.method, 'POST');
    assert.equal(delivery.url, '/hooks/openai');
    assert.equal(delivery.headers['content-type'], 'application/json');
    return event;
  };

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aq-upstream-'));
    upstream = await startProcess(required('FAKE_UPSTREAM'), ['0'], {}, /listening on http:\/\/127\.0\.0\.1:(\d+)/, dir);
    everything = await startReceiver();
    bobFailures = await startReceiver();
    gw = await startGateway({
      plugins: {
        files: { enabled: true },
        batches: {
          enabled: true, requires: ['files'], poll_interval_ms: 50, backoff_initial_ms: 50,
          webhook_backoff_initial_ms: 200,
          upstreams: [{ name: 'fake', base_url: `http://127.0.0.1:${upstream.port}/v1`, models: ['test-model'],
            max_concurrency: 4, timeout_seconds: 30 }],
          webhooks: [
            { url: everything.url, secret: secrets.everything },
            { url: bobFailures.url, secret: secrets.bobFailures, owners: ['user:bob'], events: ['batch.failed'] },
          ],
        },
      },
    });
    alice = new OpenAI({ apiKey: gw.tokens.alice, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
    bob = new OpenAI({ apiKey: gw.tokens.bob, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    upstream?.child.kill('SIGTERM');
    await everything?.close();
    await bobFailures?.close();
  });

  test('each_terminal_status_sends_one_signed_event_that_the_sdk_unwraps', async () => {
    await control('/_config', { latency_ms: 0, rules: {} });
    const completed = await finished(alice, (await create(alice, input(3, 'ok'))).id);
    assert.equal(completed.status, 'completed');
    const failed = await finished(alice, (await create(alice, input(1, 'bad', 'no-such-model'))).id);
    assert.equal(failed.status, 'failed');
    await control('/_config', { latency_ms: 2000, rules: {} });
    const slow = await create(alice, input(8, 'slow'));
    for (let b = await alice.batches.retrieve(slow.id); b.status === 'validating'; b = await alice.batches.retrieve(slow.id))
      await new Promise((r) => setTimeout(r, 50));
    await alice.batches.cancel(slow.id);
    const cancelled = await finished(alice, slow.id);
    assert.equal(cancelled.status, 'cancelled');
    await control('/_config', { latency_ms: 0, rules: {} });

    await until('three events', () => everything.deliveries.length >= 3);
    await new Promise((r) => setTimeout(r, 500));  // and no more than three
    assert.equal(everything.deliveries.length, 3);
    const byBatch = new Map(everything.deliveries.map((d) => [JSON.parse(d.body).data.id, d]));
    await unwrap(byBatch.get(completed.id), secrets.everything, 'batch.completed', completed.id);
    await unwrap(byBatch.get(failed.id), secrets.everything, 'batch.failed', failed.id);
    await unwrap(byBatch.get(cancelled.id), secrets.everything, 'batch.cancelled', cancelled.id);
    // The signature is checked, not merely present: another secret fails it.
    const other = new OpenAI({ apiKey: 'unused', webhookSecret: secretFor() });
    await assert.rejects(other.webhooks.unwrap(byBatch.get(completed.id).body, byBatch.get(completed.id).headers),
      (e) => e instanceof OpenAI.InvalidWebhookSignatureError);
    // Alice's events are not for the endpoint that takes bob's failures only.
    assert.equal(bobFailures.deliveries.length, 0);
  });

  test('an_endpoint_filtered_by_owner_and_event_gets_only_those', async () => {
    const before = everything.deliveries.length;
    const ok = await finished(bob, (await create(bob, input(1, 'bob-ok'))).id);
    const bad = await finished(bob, (await create(bob, input(1, 'bob-bad', 'no-such-model'))).id);
    assert.deepEqual([ok.status, bad.status], ['completed', 'failed']);
    await until('bob\'s events', () => everything.deliveries.length >= before + 2 && bobFailures.deliveries.length >= 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(everything.deliveries.length, before + 2);
    assert.equal(bobFailures.deliveries.length, 1);
    const event = await unwrap(bobFailures.deliveries[0], secrets.bobFailures, 'batch.failed', bad.id);
    // The same event (one id) at every endpoint that takes it.
    const sameAtEverything = everything.deliveries.slice(before).find((d) => JSON.parse(d.body).data.id === bad.id);
    assert.equal(sameAtEverything.headers['webhook-id'], event.id);
    assert.equal(sameAtEverything.body, bobFailures.deliveries[0].body);
  });

  test('a_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt', async () => {
    const before = everything.deliveries.length;
    everything.failNext = 3;
    const done = await finished(alice, (await create(alice, input(1, 'retry'))).id);
    await until('four attempts', () => everything.deliveries.length >= before + 4);
    await new Promise((r) => setTimeout(r, 1000));
    const attempts = everything.deliveries.slice(before);
    assert.deepEqual(attempts.map((d) => d.status), [500, 500, 500, 200]);
    // One event: the same webhook-id and body on every attempt, each attempt signed anew.
    assert.equal(new Set(attempts.map((d) => d.headers['webhook-id'])).size, 1);
    assert.equal(new Set(attempts.map((d) => d.body)).size, 1);
    for (const d of attempts) await unwrap(d, secrets.everything, 'batch.completed', done.id);
    const id = attempts[0].headers['webhook-id'];
    for (const n of [1, 2, 3]) assert.match(gw.log(), new RegExp(`webhook ${id} \\(batch\\.completed, ${done.id}\\) to ${everything.url}, attempt ${n}: HTTP 500; next attempt in \\d+ s`));
    assert.match(gw.log(), new RegExp(`webhook ${id} \\(batch\\.completed, ${done.id}\\) to ${everything.url}, attempt 4: 200, delivered`));
  });
});

describe('batch.expired', () => {
  test('a_batch_past_its_window_sends_batch_expired', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aq-upstream-'));
    const upstream = await startProcess(required('FAKE_UPSTREAM'), ['0'], {}, /listening on http:\/\/127\.0\.0\.1:(\d+)/, dir);
    const receiver = await startReceiver();
    const secret = secretFor();
    const gw = await startGateway({
      plugins: {
        files: { enabled: true },
        batches: {
          enabled: true, requires: ['files'], poll_interval_ms: 50, completion_window_seconds: 2,
          upstreams: [{ name: 'fake', base_url: `http://127.0.0.1:${upstream.port}/v1`, models: ['test-model'],
            max_concurrency: 1, timeout_seconds: 30 }],
          webhooks: [{ url: receiver.url, secret, events: ['batch.expired'] }],
        },
      },
    });
    try {
      await fetch(`http://127.0.0.1:${upstream.port}/_config`, { method: 'POST', body: JSON.stringify({ latency_ms: 1500 }) });
      const alice = new OpenAI({ apiKey: gw.tokens.alice, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
      const file = await alice.files.create({ file: await toFile(Buffer.from(input(10, 'late')), 'in.jsonl'), purpose: 'batch' });
      const created = await alice.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      const done = await finished(alice, created.id);
      assert.equal(done.status, 'expired');
      await until('the expired event', () => receiver.deliveries.length >= 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(receiver.deliveries.length, 1);
      const sdk = new OpenAI({ apiKey: 'unused', webhookSecret: secret });
      const event = await sdk.webhooks.unwrap(receiver.deliveries[0].body, receiver.deliveries[0].headers);
      assert.equal(event.type, 'batch.expired');
      assert.deepEqual(event.data, { id: created.id });
    } finally {
      await gw.stop();
      upstream.child.kill('SIGTERM');
      await receiver.close();
    }
  });
});
