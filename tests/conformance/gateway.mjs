// Starts a real aqueductd for the conformance suites, the way a user would: a config file, a
// plugin dir, bearer tokens known only by their SHA-256, and the port read from the
// "listening on http://" log line (the config asks for port 0).
//
// Paths come from CTest (tests/conformance/CMakeLists.txt): AQUEDUCTD, AQ_PLUGIN_DIR and, for
// the batch suite, FAKE_UPSTREAM.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
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

// `tls`: the config's "tls" section (the gateway then listens on both ports; tlsPort is the
// one from "listening on https://").
export async function startGateway({ plugins = { files: { enabled: true } }, database, tls } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'aq-conformance-'));
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
