// A tokenizer for tests of decoding and the n-gram: byte-level with a few multi-byte pieces,
// no training and no native code, so expected ids can be worked out by hand.
import type { DecodingTokenizer } from '../../models/src/infer/generate';

/** A byte-level tokenizer with a few multi-byte tokens (greedy longest match) and 4 specials. */
export class TestCodec implements DecodingTokenizer {
  private readonly pieces: Uint8Array[];
  readonly vocabSize: number;
  readonly special: { endOfText: number; fimPrefix: number; fimMiddle: number; fimSuffix: number };
  constructor(merges: string[]) {
    const encoder = new TextEncoder();
    this.pieces = [...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)), ...merges.map((m) => encoder.encode(m))];
    const n = this.pieces.length;
    this.special = { endOfText: n, fimPrefix: n + 1, fimMiddle: n + 2, fimSuffix: n + 3 };
    this.vocabSize = n + 4;
  }
  encode(text: string): number[] {
    const bytes = new TextEncoder().encode(text);
    const ids: number[] = [];
    for (let i = 0; i < bytes.length; ) {
      let best = bytes[i];
      for (let id = 256; id < this.pieces.length; id++) {
        const p = this.pieces[id];
        if (p.length > this.pieces[best].length && p.every((b, j) => bytes[i + j] === b)) best = id;
      }
      ids.push(best);
      i += this.pieces[best].length;
    }
    return ids;
  }
  tokenBytes(id: number): Uint8Array {
    return id < this.pieces.length ? this.pieces[id] : new Uint8Array(0);
  }
}
