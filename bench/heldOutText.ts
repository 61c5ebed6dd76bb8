// Every held-out token of some files scored once by a completion session's model.onnx, in
// consecutive context-length windows, plain code (no FIM, no summary examples): loss per token,
// bits per byte, top-1. The fine-tune modes and FIM-rate benches score their models with it.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tokenizeFiles, openTokenStream } from '../models/src/data/dataset';
import type { CompletionSession } from '../models/src/infer/session';
import { NextTokenTally } from '../models/src/eval/metrics';

export interface HeldOutText {
  tokens: number;
  bytes: number;
  lossPerToken: number; // nats
  bitsPerByte: number;
  top1: number;
}

export async function scoreHeldOutText(session: CompletionSession, files: Parameters<typeof tokenizeFiles>[0]): Promise<HeldOutText> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-held-out-'));
  try {
    const file = path.join(scratch, 'held-out.bin');
    await tokenizeFiles(files, session.tokenizer, file, { seed: 0 });
    const stream = openTokenStream(file);
    const tokens = stream.read(0, stream.length);
    const blockSize = session.config.blockSize;
    const vocab = session.tokenizer.vocabSize;
    const tally = new NextTokenTally((id) => session.tokenizer.tokenBytes(id).length);
    for (let start = 0; start + 1 < tokens.length; start += blockSize) {
      const n = Math.min(blockSize, tokens.length - 1 - start);
      const logits = await session.logitsUncached(Array.from(tokens.subarray(start, start + n)));
      for (let t = 0; t < n; t++) tally.add(logits, tokens[start + t + 1], t * vocab, vocab);
    }
    const s = tally.summary();
    return { tokens: s.tokens, bytes: s.bytes, lossPerToken: +s.loss!.toFixed(4), bitsPerByte: +s.bitsPerByte!.toFixed(4), top1: +s.top1!.toFixed(4) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
