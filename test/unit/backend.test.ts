// Backend selection: the best available backend is really active afterwards, each better one that
// was passed over has a reason, a forced unavailable backend is a clear error, and wasm computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, wasmDir, BACKEND_NAMES, type BackendName } from '../../models/src/train/backend';
import { GPT } from '../../models/src/model/gpt';

const TFJS_NAME: Record<BackendName, string> = { 'tfjs-node-gpu': 'tensorflow', webgpu: 'webgpu', onnxruntime: 'cpu', 'tfjs-node': 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

test('auto selection: the chosen backend is active, and every better one has a reason', async () => {
  const choice = await selectBackend();
  assert.ok(BACKEND_NAMES.includes(choice.name));
  assert.equal(tf.getBackend(), TFJS_NAME[choice.name]);
  assert.ok(choice.device.length > 0);
  const better = BACKEND_NAMES.slice(0, BACKEND_NAMES.indexOf(choice.name));
  assert.deepEqual(choice.fallbacks.map((f) => f.split(':')[0]), better);
  if (!installed('@tensorflow/tfjs-node-gpu')) assert.match(choice.fallbacks[0], /^tfjs-node-gpu: @tensorflow\/tfjs-node-gpu is not installed$/);
  // onnxruntime-node is a dependency (it serves completions): on a machine with no GPU it trains.
  assert.ok(BACKEND_NAMES.indexOf(choice.name) <= BACKEND_NAMES.indexOf('onnxruntime'), `auto chose ${choice.name}: ${choice.fallbacks.join('; ')}`);
});

test('forcing wasm: runs a matmul with the right numbers; device names the cores', async () => {
  const choice = await selectBackend('wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(choice.fallbacks, []);
  assert.match(choice.device, /^CPU \(wasm SIMD; \d+ cores, one thread per gradient worker\)$/);
  const product = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]]));
  assert.deepEqual(Array.from(product.dataSync()), [17, 39]);
  product.dispose();
});

test('forcing cpu works; forcing an unknown or unavailable backend is a clear error', async () => {
  assert.equal((await selectBackend('cpu')).name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  await assert.rejects(selectBackend('tpu' as BackendName), /unknown backend "tpu"; choose one of: tfjs-node-gpu, webgpu, onnxruntime, tfjs-node, wasm, cpu/);
  if (!installed('@tensorflow/tfjs-node')) {
    await assert.rejects(selectBackend('tfjs-node'), /backend tfjs-node: @tensorflow\/tfjs-node is not installed \(hint: leave the backend unset/);
    assert.equal(tf.getBackend(), 'cpu'); // a failed forced choice leaves the active backend alone
  } else {
    assert.equal((await selectBackend('tfjs-node')).name, 'tfjs-node');
  }
});

test('forcing onnxruntime: the GPT\'s own tensors sit on tfjs\'s cpu backend; device names the threads', async () => {
  const choice = await selectBackend('onnxruntime');
  assert.equal(tf.getBackend(), 'cpu');
  assert.match(choice.device, /^CPU \(onnxruntime, \d+ threads?\)$/);
});

test('wasm binaries are found from the installed package', () => {
  const dir = wasmDir();
  assert.ok(path.isAbsolute(dir));
  for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) assert.ok(existsSync(path.join(dir, file)), file);
});

test('webgpu (Dawn, OpenGL compatibility mode when no Vulkan GPU): same loss as cpu, or a clear reason', async () => {
  const config = { vocabSize: 64, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16, dropout: 0 };
  const lossOn = async (name: BackendName): Promise<number> => {
    await selectBackend(name);
    const model = new GPT(config, { seed: 1 });
    const x = tf.tensor2d([[1, 5, 9, 13, 17, 21, 25, 29]], [1, 8], 'int32');
    const loss = model.loss(x, x);
    const value = (await loss.data())[0];
    tf.dispose([x, loss]);
    model.dispose();
    return value;
  };
  const onCpu = await lossOn('cpu');
  Object.assign(process.env, { EGL_PLATFORM: 'surfaceless', WLM_DAWN_FLAGS: 'backend=opengl,enable-dawn-features=allow_unsafe_apis', WLM_WEBGPU_COMPAT: '1', WLM_ALLOW_SOFTWARE_GPU: '1' });
  try {
    const onGpu = await lossOn('webgpu');
    assert.equal(tf.getBackend(), 'webgpu');
    assert.ok(Math.abs(onGpu - onCpu) < 1e-5, `webgpu ${onGpu} vs cpu ${onCpu}`);
    process.stderr.write(`webgpu loss ${onGpu}, cpu ${onCpu}\n`);
  } catch (err) {
    // No adapter of any kind on this machine: the error must say which backend and why.
    assert.match((err as Error).message, /^backend webgpu: .+ \(hint: leave the backend unset/);
  } finally {
    for (const key of ['WLM_DAWN_FLAGS', 'WLM_WEBGPU_COMPAT', 'WLM_ALLOW_SOFTWARE_GPU']) delete process.env[key];
    await selectBackend('cpu');
  }
});
