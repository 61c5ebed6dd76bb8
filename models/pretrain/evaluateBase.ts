// The base model's figures for its model card: bits per byte and next-token top-1 of the GPT alone
// on code it never trained on — the corpus files the trainer held out, and rxjs@7.8.2's src/ (the
// benchmarks' held-out corpus, not in the manifest). Bits per byte, because models with different
// tokenizers are compared that way (DESIGN.md). It scores; it trains nothing and writes only a
// scratch copy of the model (model.onnx is exported there, never into the shipped folder).
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchPackage, type ManifestPackage } from './corpus';
import { scanFolder, readSourceText, type SourceFile } from '../src/data/files';
import { splitFiles } from '../src/data/dataset';
import { readModelConfig } from '../src/model/checkpoint';
import { CompletionSession } from '../src/infer/session';
import { crossEntropy, rankOf } from '../src/eval/metrics';

/** rxjs as the benchmarks fetch it, pinned like a manifest entry (it is held out, not trained on). */
export const RXJS: ManifestPackage = {
  name: 'rxjs',
  version: '7.8.2',
  license: 'Apache-2.0',
  licenseFile: 'LICENSE.txt',
  integrity: 'sha512-dhKf903U/PQZY6boNNtAGdWbG85WAbjT/1xYoZIC7FAY0yWapOBQVsVrDl58W86//e1VpMNBtRV4MaXfdMySFA==',
  shasum: '955bc473ed8af11a002a2be52071bf475638607b',
  folders: ['src'],
};

export interface HeldOutScores {
  name: string;
  files: number;
  windows: number; // scored windows of blockSize tokens, evenly spread over the files
  tokens: number;
  bytes: number; // UTF-8 bytes of the scored tokens
  lossPerToken: number; // nats
  bitsPerByte: number;
  top1: number;
}

const MAX_WINDOWS = 300;

/** Scores the model on up to MAX_WINDOWS windows spread evenly over the files' token stream. */
async function score(session: CompletionSession, blockSize: number, name: string, files: SourceFile[]): Promise<HeldOutScores> {
  const tok = session.tokenizer;
  const stream: number[] = [];
  for (const file of files) {
    const text = await readSourceText(file);
    if (text) stream.push(tok.special.endOfText, ...tok.encode(text)); // documents start after <|endoftext|>, as in training
  }
  const available = Math.floor((stream.length - 1) / blockSize);
  const windows = Math.min(MAX_WINDOWS, available);
  let nats = 0;
  let bytes = 0;
  let right = 0;
  let tokens = 0;
  const vocab = session.tokenizer.vocabSize;
  for (let w = 0; w < windows; w++) {
    const start = Math.floor((w * available) / windows) * blockSize;
    const input = stream.slice(start, start + blockSize);
    const logits = await session.logitsUncached(input);
    for (let t = 0; t < blockSize; t++) {
      const target = stream[start + t + 1];
      nats += crossEntropy(logits, target, t * vocab, vocab);
      if (rankOf(logits, target, t * vocab, vocab) === 0) right++;
      bytes += tok.tokenBytes(target).length;
      tokens++;
    }
  }
  return { name, files: files.length, windows, tokens, bytes, lossPerToken: nats / tokens, bitsPerByte: nats / Math.LN2 / bytes, top1: right / tokens };
}

/** The base's scores on the corpus's held-out split (as the trainer split it) and on rxjs. */
export async function evaluateBase(baseDir: string, corpusDir: string): Promise<HeldOutScores[]> {
  const config = await readModelConfig(baseDir);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-base-eval-'));
  try {
    for (const file of await fs.readdir(baseDir)) await fs.copyFile(path.join(baseDir, file), path.join(scratch, file));
    const session = await CompletionSession.open(scratch); // exports model.onnx into the scratch copy
    try {
      const corpusFiles = splitFiles((await scanFolder(corpusDir)).files, config.train.valFraction, config.train.seed).val;
      const rxjsRoot = await fetchPackage(RXJS);
      const rxjsFiles = (await scanFolder(path.join(rxjsRoot, 'src'))).files;
      return [
        await score(session, config.model.blockSize, 'held-out corpus files', corpusFiles),
        await score(session, config.model.blockSize, 'rxjs@7.8.2 src/ (never trained on)', rxjsFiles),
      ];
    } finally {
      await session.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
