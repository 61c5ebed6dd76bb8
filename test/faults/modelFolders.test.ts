// Fault suite, model folders: every file of a trained model missing, truncated, garbage or empty,
// of a future format version, or a foreign ONNX graph. Each damaged folder is listed by the store
// (models/src/model/store.ts), opened as the server and the CLI open it (CompletionSession.open,
// then a completion), and completed from with `wlm complete`. Each must either serve (the damaged
// file was derived and is rebuilt or left out) or be refused with a clear error; never load and
// then fail, never crash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CompletionSession } from '../../models/src/infer/session';
import { ModelStore } from '../../models/src/model/store';
import { damages, damagedCopy } from './corruptModels';
import { Rng, SEED, Tally, classifyCliFailure, fixture, sharedModel, unclear, wlm, type Outcome } from './faultKit';

const tally = new Tally('modelFolders');
const rng = new Rng(SEED * 7 + 1);
let tmp: string;
let modelsDir: string; // listed and opened in-process
let cliModelsDir: string; // the same damages, fresh, for the CLI (opening may rebuild a derived file)
const source = path.join(fixture, 'src', 'inventory.ts');

before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-faults-models-'));
  modelsDir = path.join(tmp, 'models');
  cliModelsDir = path.join(tmp, 'cli-models');
  for (const damage of damages()) {
    damagedCopy(sharedModel(), modelsDir, damage, rng);
    damagedCopy(sharedModel(), cliModelsDir, damage, rng);
  }
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

/** A cursor at the end of a line with code on it, 1-based as the CLI takes it. */
function cursor(): { line: number; col: number; prefix: string; suffix: string } {
  const lines = readFileSync(source, 'utf8').split('\n');
  const line = lines.findIndex((l) => l.trim().length > 10) + 1;
  const prefix = lines.slice(0, line).join('\n');
  return { line, col: lines[line - 1].length + 1, prefix, suffix: '\n' + lines.slice(line).join('\n') };
}


test('the store lists every damaged folder with a state, and a reason where it is not ready', async () => {
  const store = new ModelStore(modelsDir);
  const { models } = await store.list(null);
  assert.equal(models.length, damages().length);
  for (const model of models) {
    await tally.probe('model folder: store list', model.name, async (): Promise<Outcome> => {
      if (model.state === 'corrupt' || model.state === 'incomplete') {
        if (!model.reason || unclear(model.reason)) return { kind: 'crash', detail: `listed ${model.state} without a clear reason: ${model.reason}` };
        return { kind: 'error', message: `${model.state}: ${model.reason}` };
      }
      return { kind: 'defined', what: `listed ${model.state}` };
    });
  }
});

test('each damaged folder serves or is refused with a clear error (CompletionSession.open + complete)', async () => {
  const at = cursor();
  for (const damage of damages()) {
    await tally.probe('model folder: open + complete', damage.what, async (): Promise<Outcome> => {
      let session: CompletionSession;
      try {
        session = await CompletionSession.open(path.join(modelsDir, damage.name));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const why = unclear(message) ?? (message.includes(damage.name) ? null : 'does not name the folder');
        if (why) return { kind: 'crash', detail: `unclear refusal (${why}): ${JSON.stringify(message)}` };
        return { kind: 'error', message };
      }
      try {
        const result = await session.complete({ prefix: at.prefix, suffix: at.suffix, mode: 'line', maxTokens: 8 });
        if (typeof result.text !== 'string') return { kind: 'crash', detail: `loaded, then answered ${JSON.stringify(result)}` };
        return { kind: 'defined', what: `serves (${damage.what}: a derived file, rebuilt or left out)` };
      } catch (err) {
        return { kind: 'crash', detail: `loaded, then failed to complete: ${err instanceof Error ? err.message : String(err)}` };
      } finally {
        await session.close();
      }
    });
  }
});

test('wlm complete on each damaged folder: a completion or one "wlm: " line', { timeout: 240_000 }, async () => {
  const at = cursor();
  const queue = damages();
  // Two at a time: each is mostly a process starting.
  const worker = async () => {
    for (let damage = queue.shift(); damage; damage = queue.shift()) {
      const name = damage.name;
      await tally.probe('model folder: wlm complete', damage.what, async (): Promise<Outcome> => {
        const r = await wlm(['complete', path.join(cliModelsDir, name), `${source}:${at.line}:${at.col}`, '--max-tokens', '8'], { timeoutMs: 60_000 });
        if (r.code === 0) return { kind: 'defined', what: 'serves' };
        return classifyCliFailure(r);
      }, 70_000);
    }
  };
  await Promise.all([worker(), worker()]);
});
