// Secret scrubbing: credentials in a file's text are replaced by SECRET_PLACEHOLDER before any
// tokenizer, model or n-gram sees them. Owns what counts as a secret in text: token formats (at
// least every shape secretlint's recommended preset detects; the prefixes and lengths below are
// taken from its rules), credentials inside URLs and connection strings, private key blocks,
// JWTs, and values given to password-like names in code, JSON, YAML, .env and INI text. It does
// not decide which files are read: files.ts skips files that usually hold secrets (.env, keys,
// credentials) without opening them.
//
// Two kinds of evidence, applied in this order: a value's own shape (a token format says "secret"
// wherever it appears), then the name it is given (`password = ...` says so whatever the value
// looks like). A name alone never redacts code: `password = getPassword()` is an expression, and
// only literals (quoted, or bare in config formats) are values.
import { languageOf } from './sourceScanner';

export const SECRET_PLACEHOLDER = '<redacted>';

/** `text` with every credential it holds replaced; `fileName` (a path or base name) tells code from config. */
export function scrubSecrets(text: string, fileName = ''): string {
  const config = isConfigFormat(fileName);
  let out = text;
  for (const pattern of Object.values(TOKEN_SHAPES)) out = out.replace(pattern, SECRET_PLACEHOLDER);
  for (const pattern of Object.values(SECRET_URL_PATHS)) out = out.replace(pattern, `$1${SECRET_PLACEHOLDER}`);
  out = out.replace(URL_CREDENTIALS, redactUrlCredentials);
  out = out.replace(URL_TOKEN_AS_USER, (match, scheme: string, user: string) =>
    looksRandom(user, 3.0) ? `${scheme}${SECRET_PLACEHOLDER}@` : match,
  );
  for (const pattern of Object.values(KEYED_SHAPES)) out = out.replace(pattern, redactValueAfter);
  out = out.replace(BEARER_TOKEN, (match, scheme: string, token: string) =>
    looksRandom(token, 3.0) ? `${scheme}${SECRET_PLACEHOLDER}` : match,
  );
  out = out.replace(CONNECTION_STRING_PAIR, (match, before: string, name: string, op: string, value: string) =>
    secretByName(name, value) && !looksLikeExpression(value) ? `${before}${name}${op}${SECRET_PLACEHOLDER}` : match,
  );
  out = out.replace(QUERY_PARAMETER, (match, lhs: string, name: string, value: string) =>
    secretByName(name, value) ? `${lhs}${SECRET_PLACEHOLDER}` : match,
  );
  out = out.replace(QUOTED_ASSIGNMENT, (match, name: string, op: string, quote: string, value: string) => {
    const secret = secretKind(name) !== null ? secretByName(name, value) : secretByLook(name, value);
    return secret ? `${name}${op}${quote}${SECRET_PLACEHOLDER}${quote}` : match;
  });
  out = out.replace(XML_ELEMENT, (match, tag: string, value: string) =>
    secretByName(tag, value.trim()) ? `<${tag}>${SECRET_PLACEHOLDER}</${tag}>` : match,
  );
  out = out.replace(BARE_LINE, (match, lhs: string, name: string, op: string, rest: string) => {
    const envStyle = /^[A-Z][A-Z0-9_]*$/.test(name) && op === '=';
    if (!config && !envStyle) return match;
    const [, value, tail] = /^(.*?)(,?(?:\s+[#;].*)?\s*)$/.exec(rest)!; // a trailing comment or JSON comma stays
    return secretByName(name, value) && !looksLikeExpression(value) ? `${lhs}${SECRET_PLACEHOLDER}${tail}` : match;
  });
  out = out.replace(BARE_ASSIGNMENT, (match, name: string, op: string, value: string) =>
    secretByLook(name, value, 3.5) && /\d/.test(value) && !looksLikeExpression(value) ? `${name}${op}${SECRET_PLACEHOLDER}` : match,
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shapes: recognisable wherever they appear. Lower length bounds only, so a longer token of the
// same kind is still redacted whole. `(?<![A-Za-z])` as in secretlint: a prefix glued to a word
// (`xghp_`) is not a prefix.

const TOKEN_SHAPES: Record<string, RegExp> = {
  // PEM: RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... up to its END line; a truncated block to the end of its base64.
  privateKeyBlock: /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]*)/g,
  awsAccessKeyId: /\b(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b/g,
  githubAppInstallationToken: /(?<![A-Za-z])ghs_[0-9]{1,20}_[\w-]+\.[\w-]+\.[\w-]+/g, // before the classic ghs_
  githubToken: /(?<![A-Za-z])gh[pousr]_[A-Za-z0-9_]{36,}/g, // ghp personal, gho OAuth, ghu user, ghs server, ghr refresh
  githubFineGrainedToken: /(?<![A-Za-z])github_pat_[A-Za-z0-9_]{22,}/g,
  gitlabToken: /(?<![A-Za-z])gl(?:pat|dt|rt|ptt|cbt|ft|imt|oas|soat)-[A-Za-z0-9_-]{20,}/g,
  slackToken: /(?<![A-Za-z])(?:xox[abposr]|xapp)-[A-Za-z0-9-]{10,}/g,
  stripeKey: /(?<![A-Za-z])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}/g,
  stripeWebhookSecret: /(?<![A-Za-z])whsec_[A-Za-z0-9]{24,}/g,
  googleApiKey: /(?<![A-Za-z])AIza[0-9A-Za-z_-]{35}/g,
  // 36 base62 characters; with underscores only when a digit shows it is not npm_config_some_setting_name.
  npmToken: /(?<![A-Za-z])npm_(?:[A-Za-z0-9]{36}|(?=[A-Za-z_]*[0-9])[A-Za-z0-9_]{36})(?![A-Za-z0-9_])/g,
  anthropicKey: /(?<![A-Za-z])sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{80,}/g,
  openaiProjectKey: /(?<![A-Za-z])sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}/g,
  openaiLegacyKey: /(?<![A-Za-z])sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}/g, // T3BlbkFJ: base64 of "OpenAI"
  skPrefixedKey: /(?<![A-Za-z])sk-[A-Za-z0-9]{32,}/g, // other sk- keys (older OpenAI, DeepSeek ...): no hyphen, so no kebab-case name
  groqKey: /(?<![A-Za-z])gsk_[A-Za-z0-9]{52,}/g,
  huggingfaceToken: /(?<![A-Za-z])hf_[A-Za-z0-9]{34,}/g,
  linearKey: /(?<![A-Za-z])lin_(?:api|oauth)_[A-Za-z0-9_]{32,}/g,
  notionToken: /(?<![A-Za-z])ntn_[0-9]{11}[A-Za-z0-9]{35,}/g,
  notionLegacyToken: /(?<![A-Za-z])secret_[A-Za-z0-9]{43}(?![A-Za-z0-9])/g,
  sendgridKey: /(?<![A-Za-z])SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/g, // 69 characters in all
  shopifyToken: /(?<![A-Za-z])shp(?:pa|ca|at|ss)_[A-Za-z0-9]{32,}/g,
  grafanaCloudToken: /(?<![A-Za-z])glc_[A-Za-z0-9+/]{32,}={0,2}/g,
  grafanaServiceAccountToken: /(?<![A-Za-z])glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}/g,
  onePasswordServiceAccountToken: /(?<![A-Za-z])ops_ey[A-Za-z0-9+/=_-]{100,}/g, // ops_ + base64 of a JSON object
  vaultToken: /(?<![A-Za-z])hv[sbr]\.[A-Za-z0-9_-]{90,}/g, // HashiCorp Vault service, batch, recovery
  vercelToken: /(?<![A-Za-z])vc[picrk]_[A-Za-z0-9]{20,}/g,
  databricksToken: /(?<![A-Za-z])dapi[A-Fa-f0-9]{32}(?:-\d)?/g,
  dockerToken: /(?<![A-Za-z])dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}/g,
  figmaToken: /(?<![A-Za-z])figd_[A-Za-z0-9_-]{40,}/g,
  cloudflareToken: /(?<![A-Za-z])(?:cfk|cfut|cfat)_[A-Za-z0-9]{48,}/g, // 40 characters and a CRC32 in hex
  tailscaleKey: /(?<![A-Za-z])tskey-[a-z]{2,20}-[A-Za-z0-9_]{8,}-[A-Za-z0-9_]{16,}/g,
  jwt: /(?<![A-Za-z])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/g, // header.payload.signature, base64url of {"
};

/** URLs whose path is the credential: the host stays, the path goes ($1 is kept). */
const SECRET_URL_PATHS: Record<string, RegExp> = {
  slackWebhook: /(https:\/\/hooks\.slack\.com\/services\/)T[A-Za-z0-9]+\/B[A-Za-z0-9]+\/[A-Za-z0-9]+/gi,
  discordWebhook: /(https:\/\/(?:ptb\.|canary\.)?discord(?:app)?\.com\/api\/webhooks\/)\d+\/[A-Za-z0-9_-]+/gi,
};

/**
 * scheme://user:password@host, any scheme (https, postgres, mongodb+srv, redis, amqp ...): the user
 * and host stay, the password goes. The password runs to the authority's last `@`, so one holding
 * an unencoded `@` is redacted whole.
 */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/?#@"'`<>]*):([^\s/?#"'`<>]*)@/gi;
/** scheme://TOKEN@host: a random-looking user is a token (GitHub accepts https://TOKEN@github.com). */
const URL_TOKEN_AS_USER = /\b([a-z][a-z0-9+.-]*:\/\/)([A-Za-z0-9_-]{20,})@/gi;

function redactUrlCredentials(match: string, scheme: string, user: string, password: string): string {
  // https://…:x-oauth-basic@github.com/: the user is the token (secretlint's npm rule).
  if (/^x-oauth-basic$/i.test(password)) return isLiteralSecret(user, 'token') ? `${scheme}${SECRET_PLACEHOLDER}:${password}@` : match;
  return isLiteralSecret(password, 'password') ? `${scheme}${user}:${SECRET_PLACEHOLDER}@` : match;
}

/** Shapes known by a fixed key: $1 (the key) stays, $2 (the value) goes unless it is a reference. */
const KEYED_SHAPES: Record<string, RegExp> = {
  // .npmrc: //registry/:_authToken=…, _auth=…, _password=… (also when a script writes one).
  npmrcAuth: /((?:^|:)_(?:authToken|auth|password)=)([^\s"'`]+)/gm,
  // aws_secret_access_key = 40 characters of base64, any quoting (secretlint's aws rule).
  awsSecretAccessKey: /((?:aws_?)?secret_?access_?key["']?[ \t]*(?::|=>|=)[ \t]*["']?)([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/gi,
  // Authorization: Bearer ..., Basic ..., Token ...: in headers, curl -H, .set('Authorization', ...).
  authorizationHeader: /(\bAuthorization["']?[ \t]*[:=,][ \t]*["'`]?[ \t]*(?:Bearer|Basic|Token|Bot)[ \t]+)([A-Za-z0-9._~+/=-]{8,})/gi,
};

/** `Bearer <token>` / `Basic <base64>` wherever it is written, when the token looks random. */
const BEARER_TOKEN = /(\b(?:Bearer|Basic)[ \t]+)([A-Za-z0-9._~+/-]{16,}=*)/g;

function redactValueAfter(match: string, key: string, value: string): string {
  const kept = isReference(value) || value.includes(SECRET_PLACEHOLDER) || !/[A-Za-z0-9]/.test(value);
  return kept ? match : `${key}${SECRET_PLACEHOLDER}`;
}

// ---------------------------------------------------------------------------------------------
// Names: a literal given to a password-like name. The patterns find candidates; secretKind and
// isLiteralSecret decide.

/** ADO / JDBC / Azure connection strings: `Server=x;User ID=sa;Password=...;`, a pair touching a `;` or a quote. */
const CONNECTION_STRING_PAIR = /(;[ \t]*|["'`][ \t]*)([A-Za-z][A-Za-z0-9_ ]*?)([ \t]*=[ \t]*)([^;"'`\r\n]*)(?=;|["'`]|\r?$)/gm;
/** ?token=..., &password=...: secrets in a query string. */
const QUERY_PARAMETER = /([?&]([A-Za-z_][\w.-]*)=)([^&#\s"'`<>]+)/g;
/**
 * name = 'value' in any language or format: `password = "…"`, `"password": "…"`, `pass: '…'`,
 * `PASSWORD := "…"`, `:password => '…'`, `const password: string = '…'`, `config["token"] = '…'`.
 * Not `==` or `!=`: a comparison is not an assignment.
 */
const QUOTED_ASSIGNMENT = /(?<![\w$@/.-])([A-Za-z_$][\w$.-]*)(["']?\]?[ \t]*(?::[ \t]*[A-Za-z_$][\w$.<>[\]|]*[ \t]*)?(?::=|=>|=(?!=)|:(?!:))[ \t]*)(["'`])((?:\\.|(?!\3)[^\\\r\n])*)\3/g;
/** <password>…</password>: Maven settings.xml, app configs. */
const XML_ELEMENT = /<([A-Za-z_][\w.-]*)>([^<>\r\n]+)<\/\1>/g;
/**
 * A whole line `name = value` or `name: value` with the value unquoted: .env (`export` too), INI,
 * .properties, YAML (`- KEY=value` lists too), Dockerfile ENV. Only in config formats, and in
 * .env-style lines (UPPER_CASE=value) anywhere; in code a bare value is an expression.
 */
const BARE_LINE = /^([ \t]*(?:(?:export|ENV|ARG)[ \t]+|-[ \t]+)?["']?([A-Za-z_$][\w$.-]*)["']?([ \t]*(?:=|:(?!\/\/))[ \t]*))([^\s"'`][^\r\n]*)$/gm;
/** name = randomLookingValue in any format: an unquoted key (base64, hex, URL-safe; with a digit, unlike an identifier) assigned in code or config. */
const BARE_ASSIGNMENT = /(?<![\w$@/.-])([A-Za-z_$][\w$.-]*)([ \t]*(?::=|=(?!=))[ \t]*)([A-Za-z0-9+=_.~-][A-Za-z0-9+/=_.~-]{15,})(?=[\s;,)\]}"'`]|$)/g;

/** Words that make a name password-like: whatever its value looks like, it is a secret. */
const PASSWORD_WORDS = new Set(['password', 'passwd', 'passwort', 'pwd', 'pw', 'passphrase', 'passcode', 'secret']);
/** Words that end longer one-word names: dbpassword, clientsecret, authtoken. */
const PASSWORD_ENDINGS = ['password', 'passwd', 'passphrase', 'secret'];
/** `pass` is a password alone (pass:), in config-style names (DB_PASS, smtp-pass) or after an account word (userPass); not in allPass or renderPass. */
const ACCOUNT_WORDS = new Set(['user', 'db', 'database', 'admin', 'root', 'smtp', 'mail', 'email', 'ftp', 'ssh', 'ldap', 'proxy', 'login', 'account', 'auth', 'basic', 'sql', 'redis']);
/** `<kind> key` and `<kind>key` are secrets: api key, ACCESS_KEY, secretKey, privateKey, AccountKey ... */
const KEY_KINDS = new Set(['api', 'access', 'secret', 'private', 'auth', 'account', 'encryption', 'signing', 'master', 'consumer', 'app', 'license', 'client']);

function nameWords(name: string): string[] {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/**
 * What the name says its value is, from its last word: a password (DB_PASSWORD, "client_secret",
 * pass, pwd2), a token or key (authToken, apiKey, AccountKey), or nothing (passwordField, tokenizer).
 */
export function secretKind(name: string): 'password' | 'token' | null {
  const words = nameWords(name);
  const last = (words.at(-1) ?? '').replace(/\d+$/, '').replace(/(secret|password)s$/, '$1');
  const previous = words.at(-2) ?? '';
  if (PASSWORD_WORDS.has(last) || PASSWORD_ENDINGS.some((w) => last.endsWith(w))) return 'password';
  if (last === 'pass' && (words.length === 1 || !/[a-z][A-Z]/.test(name) || ACCOUNT_WORDS.has(previous))) return 'password';
  if (last.endsWith('token') || last === 'apikey') return 'token';
  if (last === 'key' ? KEY_KINDS.has(previous) : last.endsWith('key') && KEY_KINDS.has(last.slice(0, -3))) return 'token';
  return null;
}

/** A secret word anywhere in the name (private_key_id, tokenHash, SECRET_KEY_BASE, credentials): evidence only with a random-looking value. */
function mentionsSecret(name: string): boolean {
  const words = nameWords(name);
  return words.some((w, i) => secretKind(words.slice(0, i + 1).join('_')) !== null || /credential|password|secret|token/.test(w));
}

const NOT_A_VALUE = new Set(['null', 'none', 'nil', 'undefined', 'true', 'false', 'yes', 'no', '~']);

/**
 * A literal that, given to a secret name, is the secret. Not one: empty; a reference to a secret
 * kept elsewhere (${VAR}, $VAR, {{ var }}, %VAR%, <your-password>); null, true, false;
 * punctuation (a lexer's `token = '('`); a count (`"secret": 0`; a PIN has four digits or more);
 * a version; a path (PWD=/home/me); a filler (XXX); the name's own word (i18n: "password":
 * "Password"); text about the secret ('Password is required', "x-continuation-token":
 * "continuationToken"). A lexer's `token` also keeps words and identifiers (`token: 'IDENT'`),
 * other token and key names words in one case or joined by separators (`id-token: write`,
 * `ENCRYPTION_KEY = 'msal.cache.encryption'`); a real token has digits or random case. A password
 * has no such excuse.
 */
function isLiteralSecret(value: string, name: string): boolean {
  const trimmed = value.trim();
  if (trimmed === '' || isReference(trimmed) || trimmed.includes(SECRET_PLACEHOLDER)) return false;
  if (NOT_A_VALUE.has(trimmed.toLowerCase()) || !/[A-Za-z0-9]/.test(trimmed) || /^\d{1,3}$/.test(trimmed)) return false;
  if (/^[~^<>=]*v?\d+(?:\.[\dx*]+)+(?:[-+][\w.]+)?$/.test(trimmed)) return false; // "jsonwebtoken": "^9.0.0"
  if (/^(?:~|\.{1,2})?\/[\w.-]/.test(trimmed) || /^(.)\1+$/.test(trimmed)) return false;
  const words = nameWords(name);
  const last = words.at(-1) ?? '';
  const valueWords = nameWords(trimmed);
  if (valueWords.join('') === last || (valueWords.length === 1 && secretKind(valueWords[0]) !== null)) return false;
  if (valueWords.length > 1 && valueWords.includes(last)) return false;
  if (secretKind(name) === 'token' && looksLikeWords(trimmed) && !/\d/.test(trimmed)) {
    // Not a camelCase run under a key name: random text passes for one too often.
    if (words.join('').replace(/\d+$/, '') === 'token' || /[\s_.\-/:@]/.test(trimmed) || /^[^A-Z]*$|^[^a-z]*$/.test(trimmed)) return false;
  }
  return true;
}

/** A secret name (password, apiKey) given a literal. */
function secretByName(name: string, value: string): boolean {
  return secretKind(name) !== null && isLiteralSecret(value, name);
}

/** A name that mentions a secret (private_key_id, tokenHash) given a random-looking value of 8 characters or more. */
function secretByLook(name: string, value: string, minBits = 3.0): boolean {
  return value.length >= 8 && mentionsSecret(name) && looksRandom(value, minBits);
}

/** A pointer to a secret kept elsewhere, not the secret: ${VAR}, $VAR, $1, $(cmd), {{ var }}, %VAR%, <placeholder>. */
function isReference(value: string): boolean {
  return /\$\{|\{\{|^\$(?:\(|\d+$|[A-Za-z_]\w*$)|^%\w+%$|^<[^<>]*>$/.test(value);
}

/** An unquoted value that is code, not a literal: getPassword(), tokens[i], process.env.X, $VAR, *anchor. */
function looksLikeExpression(value: string): boolean {
  return /[()[\]{}]|=>|^[$*&!|>]/.test(value) || /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/.test(value);
}

/** Prose whose snippets are mostly code: bare values there are as ambiguous as in code. */
const DOCUMENT_EXTENSIONS = /\.(?:md|mdx|markdown|rst|adoc|txt)$/i;

/** Config formats take bare values literally; code (per sourceScanner's languages, shell aside) and documents do not. */
function isConfigFormat(fileName: string): boolean {
  if (fileName === '' || DOCUMENT_EXTENSIONS.test(fileName)) return false;
  const language = languageOf(fileName);
  return language === undefined || language === 'shellscript';
}

// ---------------------------------------------------------------------------------------------
// Randomness: random keys score high, words and identifiers low.

/** Shannon entropy in bits per character. */
function entropyBitsPerChar(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  const n = [...s].length;
  for (const count of counts.values()) bits -= (count / n) * Math.log2(count / n);
  return bits;
}

/**
 * Keys and tokens: one run of characters with high entropy, letters mixed with digits (or, when
 * long, upper with lower case) at random. Prose, identifiers (FlowPasswordRequiredV2), paths, URLs
 * and references score high too, so they are ruled out first.
 */
function looksRandom(value: string, minBits: number): boolean {
  if (/\s/.test(value) || looksLikeWords(value) || /^\.{0,2}\/|:\/\//.test(value) || isReference(value) || value.includes(SECRET_PLACEHOLDER)) return false;
  const mixed = /[0-9]/.test(value) || (value.length >= 20 && /[a-z]/.test(value) && /[A-Z]/.test(value));
  return mixed && /[A-Za-z]/.test(value) && entropyBitsPerChar(value) >= minBits;
}

/** Two-letter words that join longer ones in names: signUp, onBehalfOf, tokenById, getIO. */
const SHORT_WORDS = new Set(['up', 'on', 'of', 'by', 'to', 'in', 'id', 'is', 'at', 'as', 'or', 'if', 'no', 'do', 'be', 'it', 'an', 'my', 'ok', 'io', 'ui', 'db', 'js', 'ts']);

/**
 * Words run together (snake_case, dotted, spaced, camelCase), a number at the end: what people
 * name things with, not what generators emit. Each word is ALL CAPS (IDENT, HTTP), or lowercase or
 * camelCase whose every part is a common short word or has a vowel and, after the first,
 * three letters or more (msal, continuationToken, signUpPasswordRequiredV2); random text
 * (wmzQmbbzDO, RzleEcgvIv) seldom manages that.
 */
function looksLikeWords(value: string): boolean {
  if (!/^[A-Za-z0-9\s_.\-/:@]+$/.test(value) || !/[A-Za-z]/.test(value)) return false;
  return value.split(/[\s_.\-/:@]+/).filter(Boolean).every((segment) => {
    const word = segment.replace(/\d+$/, ''); // a number ends a word (sha256, ResultV2), never splits one
    if (/^[A-Z]*$/.test(word)) return true;
    const parts = word.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+/g) ?? [];
    return parts.join('') === word && parts.every((part, i) =>
      /^[A-Z]{1,4}$/.test(part) || // an acronym: getIO, MathMLAttrs, ResultV2
      SHORT_WORDS.has(part.toLowerCase()) || (/[aeiouy]/i.test(part) && (i === 0 || part.length >= 3)));
  });
}
