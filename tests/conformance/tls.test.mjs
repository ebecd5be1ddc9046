// The official OpenAI Node SDK over HTTPS: a CA and a server certificate made here with the
// openssl command line, the gateway listening on its plain and TLS ports at once, and the SDK
// trusting the CA through NODE_EXTRA_CA_CERTS (and refusing the server without it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startGateway } from './gateway.mjs';

// CA, then a certificate for localhost and 127.0.0.1 signed by it; returns the paths.
function makeCertificates(dir) {
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = (name) => join(dir, name);
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ca.key'),
    '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=aqueduct conformance CA');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('server.key'),
    '-out', p('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(p('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-set_serial', '0x1234',
    '-out', p('server.pem'), '-days', '2', '-extfile', p('server.ext'));
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

// Runs tls_client.mjs in a fresh node with `env`; its one JSON line.
function sdkClient(env) {
  const out = execFileSync(process.execPath, ['tls_client.mjs'], {
    env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 60000,
  });
  return JSON.parse(out.trim());
}

describe('the OpenAI Node SDK over TLS', () => {
  let gw, certs, dir;
  before(async () => {
    // The certificates are made before the gateway (it loads them at start), in a dir of their own.
    dir = mkdtempSync(join(tmpdir(), 'aq-conformance-ca-'));
    certs = makeCertificates(dir);
    gw = await startGateway({ tls: { listen: '127.0.0.1:0', certificate: certs.cert, private_key: certs.key } });
  });
  after(async () => {
    await gw?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('with_NODE_EXTRA_CA_CERTS_the_sdk_uploads_reads_and_lists_over_https', () => {
    assert.notEqual(gw.tlsPort, 0);
    const content = [1, 2, 3].map((i) => JSON.stringify({ custom_id: `tls-${i}`, method: 'POST',
      url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `q${i}` }] } })).join('\n') + '\n';
    for (const host of ['localhost', '127.0.0.1']) {
      const seen = sdkClient({ NODE_EXTRA_CA_CERTS: certs.ca, AQ_API_KEY: gw.tokens.alice,
        AQ_BASE_URL: `https://${host}:${gw.tlsPort}/v1`, AQ_CONTENT: content });
      assert.deepEqual(seen, { bytes: Buffer.byteLength(content), filename: 'tls.jsonl', same: true, listed: true });
    }
  });

  test('without_the_ca_the_sdk_refuses_the_server_certificate', () => {
    const seen = sdkClient({ AQ_API_KEY: gw.tokens.alice, AQ_BASE_URL: `https://localhost:${gw.tlsPort}/v1`,
      AQ_CONTENT: 'x' });
    assert.equal(seen.error, 'APIConnectionError');
    assert.equal(seen.cause, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  test('the_plain_port_serves_at_the_same_time', async () => {
    const plain = new OpenAI({ apiKey: gw.tokens.alice, baseURL: `${gw.baseURL}/v1`, maxRetries: 0 });
    const list = await plain.files.list();
    assert.ok(Array.isArray(list.data));
  });

  test('plain_http_to_the_tls_port_gets_a_400_envelope_not_a_hang', async () => {
    const res = await fetch(`http://127.0.0.1:${gw.tlsPort}/v1/files`, {
      headers: { Authorization: `Bearer ${gw.tokens.alice}` }, signal: AbortSignal.timeout(10000),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: {
      message: 'This port speaks HTTPS: the plain HTTP request was sent to the TLS port.',
      type: 'invalid_request_error', param: null, code: 'plain_http_to_tls_port' } });
  });
});
