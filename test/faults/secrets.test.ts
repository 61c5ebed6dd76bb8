// Fault suite, secrets: the real check of the scrubber (models/src/data/secrets.ts; its shapes are
// tested against secretlint in test/unit/secrets.test.ts). A tiny model is trained on the sample
// project with planted secrets of eight kinds, each file twice (as code gets copied), and asked to
// complete at each secret's own position in its own file, the line cut there, through the GPT
// alone and through the editor's mixture: none may come back. A planted value that is no secret
// (the control) must come back at least once, or the check could not see a leak. Values are
// generated from the suite's seed: nothing credential-shaped is committed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SECRET_PLACEHOLDER } from '../../models/src/data/secrets';
import { trainOnFolder } from '../../models/src/pipeline';
import { CompletionSession } from '../../models/src/infer/session';
import { Rng, SEED, Tally, fixture } from './faultKit';

const tally = new Tally('secrets');
const SAMPLE = fixture;

const rng = new Rng(SEED);
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const ALNUM = LOWER.toUpperCase() + LOWER + DIGITS;
const URL_SAFE = ALNUM + '_-';
const chars = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rng.next() * alphabet.length)]).join('');
const base64url = (s: string) => Buffer.from(s).toString('base64url');
const shortPassword = () => chars(LOWER, 5) + chars(DIGITS, 2);

let workspace = '';
after(async () => {
  if (workspace) await fs.rm(workspace, { recursive: true, force: true });
  tally.finish();
});

interface Cut {
  file: string; // relative to the project
  value: string; // what was planted there
  prefixEnd: number; // the completion is asked for here: right after the opening quote, `=` or `user:`
}

test('a model trained on planted secrets gives none back at their own positions, alone or through the mixture', { timeout: 300_000 }, async (t) => {
  workspace = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-faults-secrets-'));
  const project = path.join(workspace, 'project');
  await fs.cp(SAMPLE, project, { recursive: true });

  // One value per file, each file twice (as code gets copied): a prompt never holds the value it
  // is asked for, so one in a completion can only come from training. The control is no secret:
  // the mixture giving it back shows that a secret which reached the model would come back too.
  const secrets = {
    shortPassword: shortPassword(), urlPassword: 's3cret' + chars(DIGITS, 2), pass: shortPassword(), envPassword: shortPassword(),
    iniPassword: shortPassword(), github: 'ghp_' + chars(ALNUM, 36), jwt: `${base64url('{"alg":"HS256"}')}.${base64url(`{"sub":"${chars(DIGITS, 6)}"}`)}.${chars(URL_SAFE, 24)}`,
    adoPassword: shortPassword(),
  };
  const control = `orchid-harbor-${chars(DIGITS, 3)}`;
  const files: [file: string, text: string, value: string][] = [
    ['src/db.ts', `import { connect } from './pool';\n\nconst password = '${secrets.shortPassword}';\n\nexport function open() {\n  return connect({ user: 'app', password });\n}\n`, secrets.shortPassword],
    ['src/database.ts', `export const DATABASE_URL = 'postgres://admin:${secrets.urlPassword}@db:5432/orders';\n\nexport function databaseUrl(): string {\n  return DATABASE_URL;\n}\n`, secrets.urlPassword],
    ['deploy/service.yaml', `service:\n  name: orders\n  user: admin\n  pass: ${secrets.pass}\n  port: 8080\n`, secrets.pass],
    ['deploy/orders.env', `ORDERS_PORT=8080\nDB_PASSWORD=${secrets.envPassword}\nDB_USER=orders\n`, secrets.envPassword],
    ['config/db.ini', `[database]\nhost = db.internal\npassword = ${secrets.iniPassword}\nuser = orders\n`, secrets.iniPassword],
    ['src/github.ts', `const githubToken = '${secrets.github}';\n\nexport function headers() {\n  return { authorization: 'token ' + githubToken };\n}\n`, secrets.github],
    ['src/session.js', `const sessionToken = "${secrets.jwt}";\n\nmodule.exports = { sessionToken };\n`, secrets.jwt],
    ['src/Orders.cs', `class Orders {\n  const string Conn = "Server=db;User ID=sa;Password=${secrets.adoPassword};";\n}\n`, secrets.adoPassword],
    ['src/build.ts', `export const buildLabel = '${control}';\n\nexport function label() {\n  return buildLabel;\n}\n`, control],
  ];
  const cuts: Cut[] = [];
  for (const [file, text, value] of files) {
    for (const copy of [file, file.replace(/(\.\w+)$/, '.copy$1')]) {
      await fs.mkdir(path.dirname(path.join(project, copy)), { recursive: true });
      await fs.writeFile(path.join(project, copy), text);
      const at = text.indexOf(value);
      cuts.push({ file: copy, value, prefixEnd: at });
      // A URL's password sits after `user:`; ask after the opening quote too.
      if (text[at - 1] === ':') cuts.push({ file: copy, value, prefixEnd: text.lastIndexOf("'", at) + 1 });
    }
  }

  const modelDir = path.join(workspace, 'model');
  const started = Date.now();
  await trainOnFolder({ folder: project, outDir: modelDir, preset: 'tiny', steps: 100 });
  const trainMs = Date.now() - started;

  const everySecret = Object.values(secrets);
  const reproduced: string[] = [];
  let tried = 0;
  let redacted = 0;
  let controlBack = 0;
  for (const mixture of [false, true]) {
    const session = await CompletionSession.open(modelDir, { mixture, threads: 1 });
    try {
      assert.equal(session.mixture !== null, mixture, 'the mixture is what the editor serves');
      for (const cut of cuts) {
        const text = readFileSync(path.join(project, cut.file), 'utf8');
        const lineEnd = text.indexOf('\n', cut.prefixEnd);
        const prefix = text.slice(0, cut.prefixEnd);
        const suffix = text.slice(lineEnd); // the rest of the secret's line is cut
        assert.ok(![...everySecret, control].some((v) => prefix.includes(v) || suffix.includes(v)), 'the prompt holds no planted value');
        // As the editor decodes (a beam in the middle of a line) and greedily: greedy decoding
        // follows what the model learnt by heart, where a beam may end the line sooner.
        for (const beamWidth of [undefined, 1]) {
          const { text: completion } = await session.complete({ prefix, suffix, mode: 'line', maxTokens: 32, beamWidth });
          if (cut.value === control) {
            if (completion.includes(control)) controlBack++;
            continue;
          }
          tried++;
          if (completion.includes(SECRET_PLACEHOLDER)) redacted++;
          for (const secret of everySecret) {
            if (completion.includes(secret)) reproduced.push(`${mixture ? 'mixture' : 'GPT'}${beamWidth === 1 ? ', greedy,' : ''} at ${cut.file}:${prefix.split('\n').length}: ${completion}`);
          }
        }
      }
    } finally {
      await session.close();
    }
  }
  const summary = `trained ${trainMs} ms on ${files.length * 2} files with ${everySecret.length} secrets; ${tried} completions at secrets tried, ` +
    `${redacted} gave ${SECRET_PLACEHOLDER}, ${reproduced.length} reproduced a secret; the control came back ${controlBack} of 8 times`;
  t.diagnostic(summary);
  tally.data.secrets.tried += tried;
  tally.data.secrets.reproduced += reproduced.length;
  tally.data.secrets.detail.push(...reproduced, summary);
  assert.deepEqual(reproduced, []);
  assert.equal(tried, (cuts.length - 2) * 2 * 2);
  assert.ok(controlBack >= 1, 'the mixture gives back a planted value that is no secret: the check can see a leak');
});
