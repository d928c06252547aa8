// The official JavaScript SDK (@google/genai) against an emulator: every Files and Batches call
// a client of the Developer API makes, each step's result (or its error) printed as one JSON
// document on stdout for tests/js/test_js_sdk.py to assert.
//
//   node tests/js/sdk_calls.mjs <emulator base URL> <scratch directory>
//
// A step that throws records {error: {name, status, message}} and the run goes on, so one
// divergence does not hide the others.
import { GoogleGenAI } from '@google/genai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [baseUrl, scratch] = process.argv.slice(2);
const ai = new GoogleGenAI({ apiKey: 'test', httpOptions: { baseUrl, apiVersion: 'v1beta' } });
const TERMINAL = new Set([
  'JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED',
]);
const results = {};

async function step(name, call) {
  try {
    results[name] = await call();
  } catch (error) {
    results[name] = {
      error: { name: error?.name, status: error?.status, message: String(error?.message ?? error) },
    };
  }
  return results[name];
}

async function settled(name) {
  // Polls until the job ends; the emulator runs jobs in well under a second.
  for (;;) {
    const job = await ai.batches.get({ name });
    if (TERMINAL.has(job.state)) return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function names(pager) {
  const seen = [];
  let pages = 1;
  for (;;) {
    for (const item of pager.page) seen.push(item.name);
    if (!pager.hasNextPage()) break;
    await pager.nextPage();
    pages += 1;
  }
  return { names: seen, pages };
}

const inputPath = join(scratch, 'input.jsonl');
writeFileSync(
  inputPath,
  ['alpha', 'beta']
    .map((key) => JSON.stringify({ key, request: { contents: [{ parts: [{ text: key }] }] } }))
    .join('\n') + '\n',
);
const embedPath = join(scratch, 'embed.jsonl');
writeFileSync(
  embedPath,
  JSON.stringify({ key: 'e1', request: { content: { parts: [{ text: 'x' }] } } }) + '\n',
);

const input = await step('upload', () =>
  ai.files.upload({ file: inputPath, config: { mimeType: 'jsonl', displayName: 'js-input' } }),
);
await step('upload_blob', () =>
  ai.files.upload({
    file: new Blob(['{"key":"z"}\n'], { type: 'application/json' }),
    config: { displayName: 'js-blob' },
  }),
);
const embedInput = await step('upload_embed', () =>
  ai.files.upload({ file: embedPath, config: { mimeType: 'jsonl' } }),
);
await step('files_get', () => ai.files.get({ name: input.name }));
await step('files_list', async () => names(await ai.files.list({ config: { pageSize: 2 } })));

const fileJob = await step('create_file', () =>
  ai.batches.create({
    model: 'gemini-2.5-flash',
    src: input.name,
    config: { displayName: 'js-file-job' },
  }),
);
const inlineJob = await step('create_inline', () =>
  ai.batches.create({
    model: 'gemini-2.5-flash',
    src: [
      { contents: [{ parts: [{ text: 'one' }], role: 'user' }], metadata: { key: 'k1' } },
      { contents: [{ parts: [{ text: 'two' }], role: 'user' }], metadata: { key: 'k2' } },
    ],
    config: { displayName: 'js-inline-job' },
  }),
);
const embedInline = await step('create_embed_inline', () =>
  ai.batches.createEmbeddings({
    model: 'gemini-embedding-001',
    src: {
      inlinedRequests: {
        contents: [{ parts: [{ text: 'a' }] }, { parts: [{ text: 'b' }] }],
        config: { outputDimensionality: 3 },
      },
    },
  }),
);
const embedFile = await step('create_embed_file', () =>
  ai.batches.createEmbeddings({ model: 'gemini-embedding-001', src: { fileName: embedInput.name } }),
);
const doomed = await step('create_to_cancel', () =>
  ai.batches.create({ model: 'gemini-2.5-flash', src: input.name }),
);
await step('cancel', async () => {
  await ai.batches.cancel({ name: doomed.name });
  return (await ai.batches.get({ name: doomed.name })).state;
});

await step('file_job', () => settled(fileJob.name));
await step('inline_job', () => settled(inlineJob.name));
await step('embed_inline_job', () => settled(embedInline.name));
await step('embed_file_job', () => settled(embedFile.name));
await step('batches_list', async () => names(await ai.batches.list({ config: { pageSize: 2 } })));
await step('download', async () => {
  const path = join(scratch, 'results.jsonl');
  await ai.files.download({ file: results.file_job.dest.fileName, downloadPath: path });
  return readFileSync(path, 'utf8');
});
await step('download_embed', async () => {
  const path = join(scratch, 'embed-results.jsonl');
  await ai.files.download({ file: results.embed_file_job.dest.fileName, downloadPath: path });
  return readFileSync(path, 'utf8');
});

await step('batches_delete', () => ai.batches.delete({ name: doomed.name }));
await step('batches_get_deleted', () => ai.batches.get({ name: doomed.name }));
await step('batches_get_unknown_model', () =>
  ai.batches.create({ model: 'gemini-0-nonexistent', src: input.name }),
);
await step('files_delete', () => ai.files.delete({ name: input.name }));
await step('files_get_deleted', () => ai.files.get({ name: input.name }));

process.stdout.write(JSON.stringify(results));
