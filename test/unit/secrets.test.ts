// The secret scrubber (models/src/data/secrets.ts). Its oracle is secretlint's recommended preset:
// a generated corpus of planted secrets, every kind in every format, is flagged before scrubbing
// and not after, and no planted value survives. Then the holes once found stay closed and ordinary
// code is left alone. The real check (a model trained on planted secrets gives none back) is in the
// fault suite: test/faults/secrets.test.ts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { scrubSecrets, secretKind, SECRET_PLACEHOLDER } from '../../models/src/data/secrets';

const SAMPLE = path.join(__dirname, '..', 'fixtures', 'sample-project');

// ---------------------------------------------------------------------------------------------
// Secrets, generated at run time from a seed: nothing credential-shaped is committed, and a
// failure names the same values on every run.

function seededRandom(seed: number): () => number {
  let state = seed >>> 0; // mulberry32
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seededRandom(15);
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const HEX = '0123456789abcdef';
const ALNUM = UPPER + LOWER + DIGITS;
const URL_SAFE = ALNUM + '_-';
const chars = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
/** Random but ending in a letter or digit: several rules end a token at a word boundary. */
const body = (alphabet: string, n: number) => chars(alphabet, n - 1) + chars(ALNUM, 1);
const base64url = (s: string) => Buffer.from(s).toString('base64url');
/** A short password a person would pick: the kind that slipped through when only long values counted. */
const shortPassword = () => chars(LOWER, 5) + chars(DIGITS, 2);

/** A real private key, so secretlint's privatekey rule (base64 of an ASN.1 SEQUENCE) accepts it. */
function privateKey(kind: 'rsa-pkcs1' | 'rsa-pkcs8' | 'ec'): string {
  if (kind === 'ec') return generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
  const { privateKey: key } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return key.export({ type: kind === 'rsa-pkcs1' ? 'pkcs1' : 'pkcs8', format: 'pem' }).toString();
}
/** The lines of a PEM block's base64: each must be gone after scrubbing. */
const pemLines = (pem: string) => pem.split('\n').filter((l) => l && !l.startsWith('-----'));

/** 1Password service-account token: ops_ + base64 of a JSON object ending in `}` alone (…fQ==). */
function onePasswordToken(): string {
  let json = JSON.stringify({ email: `${chars(LOWER, 12)}@1passwordserviceaccounts.lcl`, muk: { k: chars(URL_SAFE, 43) }, secretKey: chars(UPPER + DIGITS, 34), srpX: chars(HEX, 64) });
  while (json.length % 3 !== 1) json = json.replace('{', '{ ');
  return 'ops_' + Buffer.from(json).toString('base64');
}

interface Planted {
  kind: string; // what it is, in failure messages
  rule?: string; // the secretlint rule (short id) that must flag it before scrubbing; none for kinds it does not know
  name: string; // the key it is given, as words: rendered camelCase, snake_case or UPPER_CASE per format
  value: string; // what is written after the key
  secrets: string[]; // what must not survive scrubbing: the value, or its secret part
}

/** Kinds recognisable by shape alone: planted under neutral names (item 1, item 2 ...). */
function shapeKinds(): Omit<Planted, 'name'>[] {
  const token = (kind: string, rule: string, value: string) => ({ kind, rule, value, secrets: [value] });
  const url = (kind: string, rule: string | undefined, make: (password: string) => string, password = chars(ALNUM, 16)) => ({ kind, rule, value: make(password), secrets: [password] });
  const pem = (kind: 'rsa-pkcs1' | 'rsa-pkcs8' | 'ec') => {
    const key = privateKey(kind);
    return { kind: `private key (${kind})`, rule: 'privatekey', value: key.trimEnd(), secrets: pemLines(key) };
  };
  const webhook = chars(ALNUM, 24);
  return [
    token('AWS access key id', 'aws', 'AKIA' + chars(UPPER + DIGITS, 16)),
    token('GitHub token', 'github', 'ghp_' + chars(ALNUM, 36)),
    token('GitHub fine-grained token', 'github', 'github_pat_' + body(ALNUM + '_', 82)),
    token('GitLab token', 'gitlab', 'glpat-' + body(URL_SAFE, 20)),
    token('Slack token', 'slack', `xoxb-${chars(DIGITS, 12)}-${chars(DIGITS, 13)}-${chars(ALNUM, 24)}`),
    { kind: 'Slack webhook', rule: 'slack', value: `https://hooks.slack.com/services/T${chars(UPPER + DIGITS, 8)}/B${chars(UPPER + DIGITS, 10)}/${webhook}`, secrets: [webhook] },
    token('Stripe secret key', 'stripe', 'sk_live_' + chars(ALNUM, 24)),
    token('Stripe restricted key', 'stripe', 'rk_test_' + chars(ALNUM, 32)),
    token('npm token', 'npm', 'npm_' + chars(ALNUM, 36)),
    token('OpenAI project key', 'openai', `sk-proj-${chars(URL_SAFE, 58)}T3BlbkFJ${body(URL_SAFE, 58)}`),
    token('OpenAI legacy key', 'openai', `sk-${chars(ALNUM, 20)}T3BlbkFJ${chars(ALNUM, 20)}`),
    token('Anthropic key', 'anthropic', `sk-ant-api03-${chars(URL_SAFE, 93)}AA`),
    token('Groq key', 'groq', 'gsk_' + chars(ALNUM, 52)),
    token('Hugging Face token', 'huggingface', 'hf_' + chars(UPPER + LOWER, 34)),
    token('Linear key', 'linear', 'lin_api_' + chars(ALNUM, 40)),
    token('Notion token', 'notion', 'ntn_' + chars(DIGITS, 11) + chars(ALNUM, 35)),
    token('SendGrid key', 'sendgrid', `SG.${chars(ALNUM, 22)}.${chars(ALNUM, 43)}`),
    token('Shopify token', 'shopify', 'shpat_' + chars(HEX, 32)),
    token('Grafana Cloud token', 'grafana', 'glc_' + chars(ALNUM, 48)),
    token('Grafana service account token', 'grafana', `glsa_${chars(ALNUM, 32)}_${chars(HEX, 8)}`),
    token('1Password service account token', '1password', onePasswordToken()),
    token('HashiCorp Vault token', 'hashicorp-vault', 'hvs.' + body(URL_SAFE, 95)),
    token('Vercel token', 'vercel', 'vcp_' + chars(ALNUM, 24)),
    token('Databricks token', 'databricks', 'dapi' + chars(HEX, 32)),
    token('Docker token', 'docker', 'dckr_pat_' + body(URL_SAFE, 27)),
    token('Figma token', 'figma', 'figd_' + body(URL_SAFE, 40)),
    token('Cloudflare token', 'cloudflare', `cfut_${chars(ALNUM, 40)}${chars(HEX, 8)}`),
    token('Tailscale key', 'tailscale', `tskey-auth-${chars(ALNUM, 12)}-${chars(ALNUM, 30)}`),
    pem('rsa-pkcs1'),
    pem('rsa-pkcs8'),
    pem('ec'),
    url('basic auth in a URL', 'basicauth', (p) => `https://deploy:${p}@git.corp-tools.io/infra.git`),
    url('PostgreSQL URL', 'database-connection-string', (p) => `postgres://app_rw:${p}@db.internal:5432/orders`),
    url('MySQL URL', 'database-connection-string', (p) => `mysql://reporting:${p}@mysql.internal:3306/metrics`),
    url('MongoDB URL', 'database-connection-string', (p) => `mongodb+srv://svc_orders:${p}@cluster0.x1y2z.mongodb.net/orders`),
    // Beyond the preset: shapes secretlint does not know.
    url('Redis URL, password only', undefined, (p) => `redis://:${p}@cache.internal:6379/0`, shortPassword()),
    url('AMQP URL', undefined, (p) => `amqp://worker:${p}@mq.internal:5672/jobs`),
    url('token in a query string', undefined, (p) => `https://api.internal/v1/export?format=csv&access_token=${p}`),
    url('ADO.NET connection string', undefined, (p) => `Server=tcp:sql.internal,1433;Initial Catalog=orders;User ID=svc;Password=${p};Encrypt=True;`, shortPassword()),
    url('Authorization header', undefined, (p) => `Bearer ${p}`, chars(ALNUM, 32)),
    (() => {
      const jwt = `${base64url('{"alg":"HS256","typ":"JWT"}')}.${base64url(JSON.stringify({ sub: chars(DIGITS, 8), name: 'svc', iat: 1700000000 }))}.${chars(URL_SAFE, 43)}`;
      return { kind: 'JWT', value: jwt, secrets: [jwt] };
    })(),
  ];
}

/** Kinds known by their key alone; short values, as the holes were. */
function namedKinds(): Planted[] {
  const named = (name: string, value = shortPassword()): Planted => ({ kind: `"${name}" key`, name, value, secrets: [value] });
  const awsSecret = body(ALNUM + '/+', 40);
  return [
    { kind: 'AWS secret access key', rule: 'aws', name: 'aws secret access key', value: awsSecret, secrets: [awsSecret] },
    named('password'), named('db password'), named('passwd'), named('pwd'), named('pass'), named('smtp pass'),
    named('secret'), named('client secret'), named('token', chars(LOWER, 6) + chars(DIGITS, 3)), named('auth token', chars(ALNUM, 12)),
    named('api key', chars(ALNUM, 10)), named('encryption key', chars(ALNUM, 12)),
  ];
}

type Format = 'ts' | 'js' | 'json' | 'yaml' | 'env' | 'ini';
const CORPUS_FILES: Record<Format, string> = {
  ts: 'src/settings.ts', js: 'lib/config.js', json: 'config/app.json', yaml: 'deploy/values.yaml', env: '.env', ini: 'config/app.ini',
};

const camel = (words: string) => words.split(' ').map((w, i) => (i ? w[0].toUpperCase() + w.slice(1) : w)).join('');
const snake = (words: string) => words.split(' ').join('_');

/** The file of one format holding `entries`, written as people write that format. */
function render(format: Format, entries: { name: string; value: string }[]): string {
  const multiline = (v: string) => v.includes('\n');
  switch (format) {
    case 'ts':
      return entries.map(({ name, value }) => `export const ${camel(name)} = ${multiline(value) ? `\`${value}\`` : `'${value}'`};`).join('\n') + '\n';
    case 'js':
      return `module.exports = {\n${entries.map(({ name, value }) => `  ${camel(name)}: ${JSON.stringify(value)},`).join('\n')}\n};\n`;
    case 'json':
      return JSON.stringify(Object.fromEntries(entries.map(({ name, value }) => [snake(name), value])), null, 2) + '\n';
    case 'yaml':
      return entries.map(({ name, value }, i) => {
        if (multiline(value)) return `${snake(name)}: |\n${value.split('\n').map((l) => `  ${l}`).join('\n')}`;
        return i % 2 ? `${snake(name)}: '${value}'` : `${snake(name)}: ${value}`; // quoted and bare, alternately
      }).join('\n') + '\n';
    case 'env':
      return entries.map(({ name, value }) => `${snake(name).toUpperCase()}=${multiline(value) ? JSON.stringify(value) : value}`).join('\n') + '\n';
    case 'ini':
      return '[service]\n' + entries.map(({ name, value }) => `${snake(name)} = ${multiline(value) ? JSON.stringify(value) : value}`).join('\n') + '\n';
  }
}

interface CorpusFile {
  relPath: string;
  text: string;
  planted: Planted[];
}

/** Every kind in every format, plus the files secretlint reads by name (.npmrc, package.json, a GCP key). */
function buildCorpus(): CorpusFile[] {
  const files: CorpusFile[] = [];
  for (const format of Object.keys(CORPUS_FILES) as Format[]) {
    const planted: Planted[] = [
      ...shapeKinds().map((kind, i) => ({ ...kind, name: `item ${i + 1}` })),
      ...namedKinds(),
      (() => {
        const bearer = chars(ALNUM, 32);
        return { kind: 'Authorization key', name: 'authorization', value: `Bearer ${bearer}`, secrets: [bearer] };
      })(),
    ];
    files.push({ relPath: CORPUS_FILES[format], text: render(format, planted), planted });
  }
  const npmAuth = `${chars(HEX, 8)}-${chars(HEX, 4)}-${chars(HEX, 4)}-${chars(HEX, 4)}-${chars(HEX, 12)}`;
  files.push({
    relPath: '.npmrc',
    text: `registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=${npmAuth}\nsave-exact=true\n`,
    planted: [{ kind: '.npmrc _authToken', rule: 'npm', name: '_authToken', value: npmAuth, secrets: [npmAuth] }],
  });
  const oauth = chars(HEX, 40);
  files.push({
    relPath: 'package.json',
    text: JSON.stringify({ name: 'orders', version: '1.0.0', dependencies: { tools: `git+https://${oauth}:x-oauth-basic@github.com/corp/tools.git` } }, null, 2) + '\n',
    planted: [{ kind: 'GitHub token as x-oauth-basic user', rule: 'npm', name: 'tools', value: oauth, secrets: [oauth] }],
  });
  const gcpKey = privateKey('rsa-pkcs8');
  const keyId = chars(HEX, 40);
  files.push({
    relPath: 'deploy/gcp-key.json',
    text: JSON.stringify({
      type: 'service_account', project_id: 'orders-prod', private_key_id: keyId, private_key: gcpKey,
      client_email: 'orders@orders-prod.iam.gserviceaccount.com', client_id: chars(DIGITS, 21),
    }, null, 2) + '\n',
    planted: [{ kind: 'GCP service account key', rule: 'gcp', name: 'private key', value: gcpKey, secrets: [...pemLines(gcpKey), keyId] }],
  });
  return files;
}

// ---------------------------------------------------------------------------------------------
// secretlint, the oracle.

/** What a secretlint report says: which rule, where in the text, and what it found. */
interface Finding {
  ruleId: string;
  range: readonly [number, number];
  message: string;
}
type Lint = (relPath: string, text: string) => Promise<Finding[]>;
let lint: Lint;

before(async () => {
  const { lintSource } = await import('@secretlint/core');
  const { creator } = await import('@secretlint/secretlint-rule-preset-recommend');
  // Two rules report whatever fills a slot, our own placeholder included: npm's _authToken=…
  // (and the user of a x-oauth-basic URL), and a database URL's password. Those two are told
  // that the placeholder is not a secret; nothing else is allowed. The aws rule scans for access
  // key ids only when asked (enableIDScanRule); it is asked.
  const placeholder = SECRET_PLACEHOLDER.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const rules = [
    { id: '@secretlint/secretlint-rule-aws', options: { enableIDScanRule: true } },
    { id: '@secretlint/secretlint-rule-npm', options: { allows: [`/^${placeholder}$/`] } },
    { id: '@secretlint/secretlint-rule-database-connection-string', options: { allows: [`/:${placeholder}@/`] } },
  ];
  lint = async (relPath, text) => {
    const filePath = path.join('/corpus', relPath);
    const result = await lintSource({
      source: { content: text, filePath, ext: path.extname(filePath), contentType: 'text' },
      options: { config: { rules: [{ id: creator.meta.id, rule: creator, rules }] } },
    });
    return result.messages;
  };
});

const shortRule = (ruleId: string) => ruleId.replace('@secretlint/secretlint-rule-', '');

test('secretlint as the oracle: every planted secret is flagged before scrubbing, nothing after, no value survives', async (t) => {
  const corpus = buildCorpus();
  let planted = 0;
  let detectable = 0;
  let flaggedBefore = 0;
  let flaggedAfter = 0;
  const rulesSeen = new Set<string>();
  for (const file of corpus) {
    const found = await lint(file.relPath, file.text);
    flaggedBefore += found.length;
    for (const p of file.planted) {
      planted++;
      if (!p.rule) continue;
      detectable++;
      // The corpus is real: the rule meant for this secret reports it, over the secret's own text.
      const at = file.text.indexOf(p.secrets[0]);
      assert.ok(at >= 0, `${p.kind} is in ${file.relPath}`);
      const hit = found.find((m) => shortRule(m.ruleId) === p.rule && m.range[0] <= at + p.secrets[0].length && m.range[1] >= at);
      assert.ok(hit, `secretlint's ${p.rule} rule does not flag the planted ${p.kind} in ${file.relPath}: ${JSON.stringify(found.map((m) => [shortRule(m.ruleId), m.range]))}`);
      rulesSeen.add(p.rule);
    }

    const scrubbed = scrubSecrets(file.text, file.relPath);
    const left = await lint(file.relPath, scrubbed);
    flaggedAfter += left.length;
    assert.deepEqual(left.map((m) => `${shortRule(m.ruleId)}: ${m.message}`), [], `secretlint still flags ${file.relPath} after scrubbing`);
    for (const p of file.planted) {
      for (const secret of p.secrets) assert.ok(!scrubbed.includes(secret), `${p.kind} survives in ${file.relPath}: ${secret}`);
    }
    assert.equal(scrubSecrets(scrubbed, file.relPath), scrubbed, `scrubbing ${file.relPath} twice changes it again`);
  }
  // Every rule of the preset that reads text is exercised (filter-comments only silences others).
  const textRules = ['1password', 'anthropic', 'aws', 'basicauth', 'cloudflare', 'database-connection-string', 'databricks', 'docker', 'figma',
    'gcp', 'github', 'gitlab', 'grafana', 'groq', 'hashicorp-vault', 'huggingface', 'linear', 'notion', 'npm', 'openai', 'privatekey',
    'sendgrid', 'shopify', 'slack', 'stripe', 'tailscale', 'vercel'];
  assert.deepEqual([...rulesSeen].sort(), textRules);
  assert.equal(flaggedAfter, 0);
  t.diagnostic(`planted ${planted} secrets in ${corpus.length} files (${detectable} of kinds secretlint knows, ${rulesSeen.size} rules); flagged before ${flaggedBefore}, after ${flaggedAfter}`);
});

test('scrubbed URLs and keys keep their user, host and name: only the secret goes', () => {
  const corpus = buildCorpus();
  const env = corpus.find((f) => f.relPath === '.env')!;
  const scrubbed = scrubSecrets(env.text, env.relPath);
  for (const kept of [
    `postgres://app_rw:${SECRET_PLACEHOLDER}@db.internal:5432/orders`,
    `mongodb+srv://svc_orders:${SECRET_PLACEHOLDER}@cluster0.x1y2z.mongodb.net/orders`,
    `redis://:${SECRET_PLACEHOLDER}@cache.internal:6379/0`,
    `https://hooks.slack.com/services/${SECRET_PLACEHOLDER}`,
    `User ID=svc;Password=${SECRET_PLACEHOLDER};Encrypt=True;`,
    `export?format=csv&access_token=${SECRET_PLACEHOLDER}`,
    `AUTHORIZATION=Bearer ${SECRET_PLACEHOLDER}`,
    `DB_PASSWORD=${SECRET_PLACEHOLDER}`,
    `PASS=${SECRET_PLACEHOLDER}`,
  ]) assert.ok(scrubbed.includes(kept), `${kept} in\n${scrubbed}`);
});

// ---------------------------------------------------------------------------------------------
// The holes found by hand, and the cases of each format.

test('the holes stay closed: a short quoted password, a password inside a URL, a key named pass', async () => {
  assert.equal(scrubSecrets(`password = 'hunter2'`, 'app/settings.py'), `password = '${SECRET_PLACEHOLDER}'`);
  assert.equal(scrubSecrets(`const password = 'hunter2';`, 'src/db.ts'), `const password = '${SECRET_PLACEHOLDER}';`);
  const url = `const DATABASE_URL = 'postgres://admin:${'s3' + 'cret'}@db';`; // built here: secretlint flags the literal
  assert.equal(scrubSecrets(url, 'src/db.ts'), `const DATABASE_URL = 'postgres://admin:${SECRET_PLACEHOLDER}@db';`);
  assert.equal((await lint('src/db.ts', url)).length, 1, 'secretlint knows this one');
  assert.deepEqual(await lint('src/db.ts', scrubSecrets(url, 'src/db.ts')), []);
  assert.equal(scrubSecrets('db:\n  user: admin\n  pass: hunter2\n', 'config.yml'), `db:\n  user: admin\n  pass: ${SECRET_PLACEHOLDER}\n`);
  assert.equal(scrubSecrets(`{ "user": "admin", "pass": "hunter2" }`, 'config.json'), `{ "user": "admin", "pass": "${SECRET_PLACEHOLDER}" }`);
  assert.equal(scrubSecrets(`login({ user: 'admin', pass: 'hunter2' });`, 'src/login.ts'), `login({ user: 'admin', pass: '${SECRET_PLACEHOLDER}' });`);
});

// Built at run time so that no credential-shaped string is committed.
const fakeGithub = 'ghp_' + 'a1B2c3D4'.repeat(5).slice(0, 36);
const fakeAws = 'AKIA' + 'QWERTYUIOP123456';
const fakeKey = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEowIBAAKCAQEA7x', 'q1w2e3r4t5', '-----END RSA PRIVATE KEY-----'].join('\n');
const R = SECRET_PLACEHOLDER;

test('scrubSecrets replaces credentials by shape and by the name they are given, in each format', () => {
  const cases: [file: string, input: string, expected: string][] = [
    ['a.ts', `const token = "${fakeGithub}";`, `const token = "${R}";`],
    ['a.ini', `aws_access_key_id = ${fakeAws}`, `aws_access_key_id = ${R}`],
    ['a.py', `key = """\n${fakeKey}\n"""`, `key = """\n${R}\n"""`],
    ['a.py', `password = "correcthorsebattery"`, `password = "${R}"`],
    ['a.ts', `  apiKey: 'x8Fj2kLq9Zt4Vw1R',`, `  apiKey: '${R}',`],
    ['a.json', `"client_secret": "9f8e7d6c5b4a39281706",`, `"client_secret": "${R}",`],
    ['a.sh', `export STRIPE_TOKEN=q8Wm3Zr5Tx7Yp2Ln9Vb4`, `export STRIPE_TOKEN=${R}`],
    // Any length, any format.
    ['a.ts', `const dbPassword: string = 'tulip7';`, `const dbPassword: string = '${R}';`],
    ['a.go', `pwd := "abc1"`, `pwd := "${R}"`],
    ['a.rb', `{ :password => 'abc1' }`, `{ :password => '${R}' }`],
    ['a.py', `connect(host="db", password="abc1")`, `connect(host="db", password="${R}")`],
    ['a.ts', `config["token"] = 'x9';`, `config["token"] = '${R}';`],
    ['a.yaml', `  db_password: abc1 # rotated monthly`, `  db_password: ${R} # rotated monthly`],
    ['docker-compose.yml', `      - POSTGRES_PASSWORD=abc1`, `      - POSTGRES_PASSWORD=${R}`],
    ['.env.example', `DB_PASSWORD=abc1\nDB_USER=app`, `DB_PASSWORD=${R}\nDB_USER=app`],
    ['a.ts', `SESSION_SECRET=abc1`, `SESSION_SECRET=${R}`], // .env-style lines, whatever the file
    ['app.ini', `[db]\npassword = abc 1 ; the old one\nuser = app`, `[db]\npassword = ${R} ; the old one\nuser = app`],
    ['application.properties', `spring.datasource.password=abc1`, `spring.datasource.password=${R}`],
    ['Dockerfile', `ENV API_KEY=abc1`, `ENV API_KEY=${R}`],
    ['settings.xml', `<password>abc1</password>`, `<password>${R}</password>`],
    ['a.json', `{\n  "retries": 1,\n  "password": 123456,\n}`, `{\n  "retries": 1,\n  "password": ${R},\n}`],
    // Connection strings, URLs, headers.
    ['a.cs', `var cs = "Server=db;User ID=sa;Password=abc1;";`, `var cs = "Server=db;User ID=sa;Password=${R};";`],
    ['a.java', `jdbc:sqlserver://h:1433;databaseName=db;user=sa;password=abc1;`, `jdbc:sqlserver://h:1433;databaseName=db;user=sa;password=${R};`],
    ['a.ts', `const url = 'mongodb+srv://u:p@ss1@c.mongodb.net/db';`, `const url = 'mongodb+srv://u:${R}@c.mongodb.net/db';`],
    ['a.sh', `curl -H "Authorization: Bearer abcdefgh12345" $URL`, `curl -H "Authorization: Bearer ${R}" $URL`],
    ['a.ts', `fetch('https://api.x.io/v1?key=1&token=abc123')`, `fetch('https://api.x.io/v1?key=1&token=${R}')`],
    ['a.sh', `echo "//registry.npmjs.org/:_authToken=abc-123" > .npmrc`, `echo "//registry.npmjs.org/:_authToken=${R}" > .npmrc`],
  ];
  for (const [file, input, expected] of cases) assert.equal(scrubSecrets(input, file), expected, `${file}: ${input}`);
});

test('scrubSecrets leaves ordinary code alone', () => {
  const ordinary: [file: string, line: string][] = [
    ['a.ts', `const tokenizer = 'byte-level';`],
    ['a.py', `token = tokens[i]`],
    ['a.ts', `const password = await askPassword();`],
    ['a.ts', `secretKey = process.env.SECRET_KEY`],
    ['a.ts', `if (apiKey === undefined) throw new Error('missing apiKey');`],
    ['a.ts', `const passwordField = document.querySelector('#pw');`],
    ['a.ts', `passwordField: 'password',`],
    ['a.ts', `this._password = password;`],
    ['a.ts', `const password: string = getPassword();`],
    ['a.ts', `if (password === '') return;`],
    ['a.ts', `{ password: 'Password is required', token: '(' }`],
    ['a.ts', `password: "[type=password]",`],
    ['a.ts', `fetch(url, { credentials: 'include' });`],
    ['a.js', `'allPass': 'overEvery',`],
    ['a.ts', `const FLOW_PASSWORD_REQUIRED_V2 = "FlowPasswordRequiredResultV2";`],
    ['a.ts', `const RESET_PWD_START = "/resetpassword/v1.0/start";`],
    ['a.ts', `const ENCRYPTION_KEY = "msal.cache.encryption";`],
    ['a.ts', `customHeaders["x-ms-continuationtoken"] = "continuationToken";`],
    ['a.ts', 'const tokenUrl = `https://${host}/oauth2/v2.0/token`;'],
    ['a.ts', 'const url = `postgres://${user}:${password}@${host}/db`;'],
    ['a.ts', `process.env.npm_${'config_onnxruntime_node_install_cuda'}`], // secretlint takes this for an npm token
    ['package.json', `"jsonwebtoken": "^9.0.0",`],
    ['a.json', `"secret": 0,`],
    ['a.yaml', `password: \${DB_PASSWORD}`],
    ['a.yaml', `token: "{{ vault_token }}"`],
    ['a.yaml', `secret:\n  name: db`],
    ['a.ini', `password =`],
    ['README.md', `Set \`password: process.env.DB_PASSWORD\` or run \`token = tokens[i]\`.`],
    ['README.md', `connect to postgres://user:password@localhost/db`],
  ];
  for (const [file, line] of ordinary) assert.equal(scrubSecrets(line, file), line, `${file}: ${line}`);
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => (statSync(path.join(dir, name)).isDirectory() ? walk(path.join(dir, name)) : [path.join(dir, name)]));
  for (const file of walk(SAMPLE)) {
    const text = readFileSync(file, 'utf8');
    assert.equal(scrubSecrets(text, path.relative(SAMPLE, file)), text, `false positive in ${path.relative(SAMPLE, file)}`);
  }
});

test('secretKind reads the last word of a name', () => {
  const kinds: [string, ReturnType<typeof secretKind>][] = [
    ['password', 'password'], ['DB_PASSWORD', 'password'], ['dbpassword', 'password'], ['client_secret', 'password'], ['pass', 'password'],
    ['SMTP_PASS', 'password'], ['userPass', 'password'], ['pwd2', 'password'], ['authToken', 'token'], ['apiKey', 'token'], ['API_KEY', 'token'],
    ['AccountKey', 'token'], ['apikey', 'token'], ['passwordField', null], ['tokenizer', null], ['allPass', null], ['bypass', null],
    ['monkey', null], ['SharedAccessKeyName', null], ['credentials', null], ['tokenType', null],
  ];
  for (const [name, kind] of kinds) assert.equal(secretKind(name), kind, name);
});
