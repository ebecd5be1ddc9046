// Starts a real aqueductd for the conformance suites, the way a user would: a config file, a
// plugin dir, bearer tokens known only by their SHA-256, and the port read from the
// "listening on http://" log line (the config asks for port 0).
//
// Paths come from CTest (tests/conformance/CMakeLists.txt): AQUEDUCTD, AQ_PLUGIN_DIR and, for
// the batch suite, FAKE_UPSTREAM. AQ_CONFORMANCE_STORE names the files plugin's content store
// ("filesystem", the embedded default, when unset; "database"; "s3", on the throwaway server
// of the "s3" CTest fixture whose settings are in AQ_TEST_S3_ENV_FILE).
import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through ctest`);
  return value;
}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
export const randomToken = () => randomBytes(24).toString('base64url');

function waitForLine(child, logPath, pattern, timeoutMs) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const log = readFileSync(logPath, 'utf8');
      const m = log.match(pattern);
      if (m) return resolve(m);
      if (child.exitCode !== null) return reject(new Error(`exited with ${child.exitCode}:\n${log}`));
      if (Date.now() - started > timeoutMs) return reject(new Error(`no ${pattern} after ${timeoutMs} ms:\n${log}`));
      setTimeout(poll, 25);
    };
    poll();
  });
}

// Starts a process that prints its address; resolves { child, port, log() }.
export async function startProcess(command, args, env, pattern, dir) {
  const logPath = join(dir, `${command.split('/').pop()}-${Date.now()}.log`);
  writeFileSync(logPath, '');
  const { openSync } = await import('node:fs');
  const fd = openSync(logPath, 'a');
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  const m = await waitForLine(child, logPath, pattern, 20000);
  return { child, port: Number(m[1]), logPath, log: () => readFileSync(logPath, 'utf8') };
}

const hmac = (key, text) => createHmac('sha256', key).update(text).digest();

// Creates a bucket on the fixture's S3 server: one PUT signed with AWS Signature V4 (path-style),
// so that each gateway gets a bucket of its own.
async function createBucket({ endpoint, region, access_key, secret_key }, bucket) {
  const url = new URL(`${endpoint}/${bucket}`);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payload = sha256('');
  const headers = `host:${url.host}\nx-amz-content-sha256:${payload}\nx-amz-date:${amzDate}\n`;
  const signed = 'host;x-amz-content-sha256;x-amz-date';
  const canonical = `PUT\n${url.pathname}\n\n${headers}\n${signed}\n${payload}`;
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256(canonical)}`;
  let key = hmac(`AWS4${secret_key}`, day);
  for (const part of [region, 's3', 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const res = await fetch(url, {
    method: 'PUT',
    headers: {
      'x-amz-content-sha256': payload,
      'x-amz-date': amzDate,
      authorization: `AWS4-HMAC-SHA256 Credential=${access_key}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
    },
  });
  if (res.status !== 200) throw new Error(`creating bucket ${bucket}: ${res.status} ${await res.text()}`);
}

// The plugins.files keys that select AQ_CONFORMANCE_STORE.
export async function storeSettings() {
  const store = process.env.AQ_CONFORMANCE_STORE ?? 'filesystem';
  if (store === 'filesystem') return {};  // the embedded default: a folder beside the database
  if (store === 'database') return { store };
  if (store !== 's3') throw new Error(`AQ_CONFORMANCE_STORE: no such store: ${store}`);
  const env = Object.fromEntries(readFileSync(required('AQ_TEST_S3_ENV_FILE'), 'utf8').split('\n')
    .filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const bucket = `aqc-${randomBytes(6).toString('hex')}`;
  await createBucket(env, bucket);
  return {
    store,
    s3: { endpoint: env.endpoint, bucket, region: env.region, addressing: 'path',
          access_key: env.access_key, secret_key: env.secret_key },
  };
}

// `tls`: the config's "tls" section (the gateway then listens on both ports; tlsPort is the
// one from "listening on https://").
export async function startGateway({ plugins = { files: { enabled: true } }, database, tls } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'aq-conformance-'));
  if (plugins.files) plugins = { ...plugins, files: { ...plugins.files, ...await storeSettings() } };
  const tokens = { alice: randomToken(), bob: randomToken(), carol: randomToken() };
  const config = {
    listen: '127.0.0.1:0',
    database: database ?? `sqlite:${join(dir, 'aqueduct.db')}`,
    plugin_dir: required('AQ_PLUGIN_DIR'),
    tokens: [
      { name: 'alice-key', user: 'alice', sha256: sha256(tokens.alice) },
      { name: 'bob-key', user: 'bob', sha256: sha256(tokens.bob) },
      { name: 'research-key', user: 'carol', team: 'research', sha256: sha256(tokens.carol) },
    ],
    plugins,
    ...(tls ? { tls } : {}),
  };
  const configPath = join(dir, 'aqueduct.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = await startProcess(required('AQUEDUCTD'), ['--config', configPath], {},
    /listening on http:\/\/127\.0\.0\.1:(\d+)/, dir);
  // The store asked for is the one in use (the plugin names it once ready).
  const store = process.env.AQ_CONFORMANCE_STORE ?? 'filesystem';
  if (plugins.files && !proc.log().includes(`new files in the ${store} `))
    throw new Error(`the gateway does not use the ${store} store:\n${proc.log()}`);
  const baseURL = `http://127.0.0.1:${proc.port}`;
  const tlsPort = tls ? Number((await waitForLine(proc.child, proc.logPath, /listening on https:\/\/127\.0\.0\.1:(\d+)/, 20000))[1]) : 0;
  return {
    dir, tokens, baseURL, port: proc.port, tlsPort, log: proc.log,
    async stop() {
      if (proc.child.exitCode === null) {
        const exited = new Promise((resolve) => proc.child.once('exit', resolve));
        proc.child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
