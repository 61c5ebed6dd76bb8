// Damaged copies of a good model folder, one damage each: every file missing, truncated, replaced
// by garbage or emptied; config.json, model.json, mixture.json and ngram.bin of a future format
// version; a foreign ONNX graph in model.onnx. Shared by the model-folder and LSP fault files;
// holds no tests.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { Rng } from './faultKit';

export interface Damage {
  name: string; // a model name (letters, digits, '.', '_', '-')
  what: string; // in words
  apply(dir: string, rng: Rng): void;
}

/** The files of a trained model folder that a damage can hit. */
export const MODEL_FILES = ['config.json', 'tokenizer.json', 'model.json', 'weights.bin', 'model.onnx', 'mixture.json', 'ngram.bin', 'metrics.jsonl'] as const;

/** A valid ONNX model that is not ours: y = Identity(x). */
export function foreignOnnx(): Uint8Array {
  const model: onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'someone-else',
    graph: {
      name: 'identity',
      node: [{ opType: 'Identity', input: ['x'], output: ['y'] }],
      input: [{ name: 'x', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } } }],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

function garbage(rng: Rng, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = rng.int(0, 255);
  return out;
}

/** Rewrites a file so that it is newer than the weights (else model.onnx would be re-exported and the damage undone). */
function write(file: string, data: string | Uint8Array): void {
  writeFileSync(file, data);
  const later = new Date(Date.now() + 1000);
  utimesSync(file, later, later);
}

function jsonWith(file: string, patch: Record<string, unknown>): string {
  return JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...patch });
}

export function damages(): Damage[] {
  const list: Damage[] = [];
  for (const file of MODEL_FILES) {
    const stem = file.replace(/\W/g, '_');
    list.push(
      { name: `missing-${stem}`, what: `${file} missing`, apply: (dir) => rmSync(path.join(dir, file), { force: true }) },
      { name: `truncated-${stem}`, what: `${file} cut to half`, apply: (dir) => { const f = path.join(dir, file); const b = readFileSync(f); write(f, b.subarray(0, Math.floor(b.length / 2))); } },
      { name: `garbage-${stem}`, what: `${file} replaced by random bytes`, apply: (dir, rng) => { const f = path.join(dir, file); write(f, garbage(rng, Math.max(64, Math.min(readFileSync(f).length, 4096)))); } },
      { name: `empty-${stem}`, what: `${file} empty`, apply: (dir) => write(path.join(dir, file), '') },
    );
  }
  list.push(
    { name: 'future-config', what: 'config.json formatVersion 99', apply: (dir) => write(path.join(dir, 'config.json'), jsonWith(path.join(dir, 'config.json'), { formatVersion: 99 })) },
    { name: 'future-weights', what: 'model.json formatVersion 99', apply: (dir) => write(path.join(dir, 'model.json'), jsonWith(path.join(dir, 'model.json'), { formatVersion: 99 })) },
    { name: 'future-mixture', what: 'mixture.json formatVersion 99', apply: (dir) => write(path.join(dir, 'mixture.json'), jsonWith(path.join(dir, 'mixture.json'), { formatVersion: 99 })) },
    { name: 'future-ngram', what: 'ngram.bin formatVersion 99', apply: (dir) => { const f = path.join(dir, 'ngram.bin'); const b = Buffer.from(readFileSync(f)); b.writeInt32LE(99, 8); write(f, b); } },
    { name: 'foreign-onnx', what: 'model.onnx a valid ONNX graph of another model', apply: (dir) => write(path.join(dir, 'model.onnx'), foreignOnnx()) },
    { name: 'other-kind-config', what: 'config.json of another tool', apply: (dir) => write(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'], n_embd: 768 })) },
    { name: 'shapes-config', what: 'config.json with a different nEmbd than the weights', apply: (dir) => { const f = path.join(dir, 'config.json'); const c = JSON.parse(readFileSync(f, 'utf8')); c.model.nEmbd *= 2; write(f, JSON.stringify(c)); } },
    { name: 'vocab-tokenizer', what: 'tokenizer.json of another vocabulary size', apply: (dir) => { const f = path.join(dir, 'tokenizer.json'); const t = JSON.parse(readFileSync(f, 'utf8')); const vocab = t.model.vocab as Record<string, number>; const last = Object.keys(vocab).find((k) => vocab[k] === Object.keys(vocab).length - 1); if (last) delete vocab[last]; write(f, JSON.stringify(t)); } },
    { name: 'nan-weights', what: 'weights.bin full of NaN', apply: (dir) => { const f = path.join(dir, 'weights.bin'); const n = readFileSync(f).length / 4; const nan = new Float32Array(n).fill(Number.NaN); write(f, new Uint8Array(nan.buffer)); rmSync(path.join(dir, 'model.onnx'), { force: true }); } },
    { name: 'config-is-folder', what: 'config.json is a folder', apply: (dir) => { rmSync(path.join(dir, 'config.json')); mkdirSync(path.join(dir, 'config.json')); cpSync(path.join(dir, 'metrics.jsonl'), path.join(dir, 'config.json', 'metrics.jsonl')); } },
  );
  return list;
}

/** A copy of the good model under modelsDir/name with the damage applied. */
export function damagedCopy(good: string, modelsDir: string, damage: Damage, rng: Rng): string {
  const dir = path.join(modelsDir, damage.name);
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  cpSync(good, dir, { recursive: true });
  damage.apply(dir, rng);
  return dir;
}
