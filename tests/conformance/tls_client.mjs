// The client half of tls.test.mjs, run as its own process because Node reads
// NODE_EXTRA_CA_CERTS only at start. Uploads a file through the official SDK over HTTPS, reads
// it back and lists it; prints one JSON line with what it saw, or the error's class and message.
import OpenAI, { toFile } from 'openai';

const client = new OpenAI({ apiKey: process.env.AQ_API_KEY, baseURL: process.env.AQ_BASE_URL, maxRetries: 0 });
const content = process.env.AQ_CONTENT;
try {
  const f = await client.files.create({ file: await toFile(Buffer.from(content), 'tls.jsonl'), purpose: 'batch' });
  const back = await (await client.files.content(f.id)).text();
  const list = await client.files.list();
  console.log(JSON.stringify({ bytes: f.bytes, filename: f.filename, same: back === content,
    listed: list.data.map((x) => x.id).includes(f.id) }));
} catch (e) {
  // The SDK's error wraps fetch's, which wraps the TLS error with its code.
  let cause = e.cause;
  while (cause && !cause.code && cause.cause) cause = cause.cause;
  console.log(JSON.stringify({ error: e.constructor.name, cause: String(cause?.code ?? cause?.message ?? '') }));
}
