// Which engine trains the model, and why: best first tfjs-node-gpu (CUDA), WebGPU through Dawn,
// onnxruntime on the CPU (gradients from onnxGradients.ts; the GPT's own tensors then sit on
// tfjs's plain cpu backend, which only initialises and receives the weights), tfjs-node (native
// CPU), wasm, plain JS cpu. Optional packages may be absent; each
// one not used leaves a reason in `fallbacks`. It does not build models or know about training.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as os from 'node:os';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { hasVulkanLoader } from '../util/platform';
import { BACKEND_NAMES, type BackendName } from './backendNames';
import { onnxTrainThreads } from './onnxGradients';

export { BACKEND_NAMES, type BackendName };

export interface BackendChoice {
  name: BackendName;
  device: string; // GPU adapter name, or "CPU (N threads)"
  fallbacks: string[]; // why each better backend was not used
}

/** The tfjs registry name of each of our backends. */
const TFJS_NAME: Record<BackendName, string> = {
  'tfjs-node-gpu': 'tensorflow',
  webgpu: 'webgpu',
  onnxruntime: 'cpu',
  'tfjs-node': 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

// The banner tfjs prints on Node ("install our node backend") is noise for our users.
tf.env().set('PROD', true);

/**
 * Picks and activates a backend. With `prefer`, that backend or a clear error; without, the best
 * one that starts. Always checks tf.getBackend() afterwards: setBackend can fail silently.
 */
export async function selectBackend(prefer?: BackendName): Promise<BackendChoice> {
  if (prefer !== undefined && !(BACKEND_NAMES as readonly string[]).includes(prefer)) {
    throw new Error(`unknown backend "${prefer}"; choose one of: ${BACKEND_NAMES.join(', ')}`);
  }
  const candidates: BackendName[] = prefer ? [prefer] : [...BACKEND_NAMES];
  const fallbacks: string[] = [];
  for (const name of candidates) {
    try {
      const device = await activate(name);
      return { name, device, fallbacks };
    } catch (err) {
      const reason = `${name}: ${(err as Error).message.split('\n')[0]}`;
      if (prefer) throw new Error(`backend ${reason} (hint: leave the backend unset to use the best available one)`);
      fallbacks.push(reason);
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${fallbacks.join('; ')}`);
}

async function activate(name: BackendName): Promise<string> {
  switch (name) {
    case 'tfjs-node-gpu': {
      loadOptional('@tensorflow/tfjs-node-gpu');
      await use(name);
      // tfjs-node-gpu silently runs on the CPU when CUDA/cuDNN do not load; ask TensorFlow.
      const gpus = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
      if (gpus === false) throw new Error('TensorFlow found no usable CUDA GPU');
      return 'CUDA GPU';
    }
    case 'webgpu':
      return activateWebGpu();
    case 'onnxruntime':
      // Default preset on a 2-core x86 CPU, one bench run (--only speed): 9,348 tokens/s, against
      // 2,685 for wasm with two gradient workers and 5,510 for PyTorch on the same cores.
      loadOptional('onnxruntime-node');
      await use(name);
      const threads = onnxTrainThreads();
      return `CPU (onnxruntime, ${threads} thread${threads === 1 ? '' : 's'})`;
    case 'tfjs-node':
      loadOptional('@tensorflow/tfjs-node');
      await use(name);
      return `CPU (${os.availableParallelism()} threads, native TensorFlow)`;
    case 'wasm':
      setWasmPaths(wasmDir());
      await use(name);
      // Under Node the wasm backend runs one thread (its thread check is off there); the trainer
      // uses more cores with gradient worker threads (parallel.ts).
      return `CPU (wasm SIMD; ${os.availableParallelism()} cores, one thread per gradient worker)`;
    case 'cpu':
      await use(name);
      return 'CPU (1 thread, plain JS)';
  }
}

/** Switches tfjs to the backend and verifies the switch really happened. */
async function use(name: BackendName): Promise<void> {
  const tfjsName = TFJS_NAME[name];
  if (!tf.findBackendFactory(tfjsName)) throw new Error(`backend "${tfjsName}" is not registered`);
  let ok = false;
  try {
    ok = await tf.setBackend(tfjsName);
    await tf.ready();
  } catch (err) {
    throw new Error(`failed to initialise: ${(err as Error).message}`);
  }
  if (!ok || tf.getBackend() !== tfjsName) {
    throw new Error(`setBackend("${tfjsName}") did not take effect (tfjs is on "${tf.getBackend()}")`);
  }
}

function loadOptional(pkg: string): void {
  try {
    // A computed name keeps bundlers from resolving an optional package at build time.
    const load = require as (id: string) => unknown;
    load(pkg);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new Error(code === 'MODULE_NOT_FOUND' ? `${pkg} is not installed` : `${pkg} failed to load (${(err as Error).message.split('\n')[0]})`);
  }
}

/**
 * The folder holding the wasm binaries of @tensorflow/tfjs-backend-wasm, resolved from the
 * installed package so it works from sources (tsx) and from the esbuild bundle in dist/.
 */
export function wasmDir(): string {
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  const dir = path.join(path.dirname(pkg), 'dist');
  if (!existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))) throw new Error(`wasm binaries not found in ${dir}`);
  return dir + path.sep;
}

// ---------------------------------------------------------------------------------------------
// WebGPU through Dawn (the `webgpu` npm package). ESM-only, so it is loaded with a real import();
// tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is first loaded.

// A Function-made import() survives bundling to CommonJS (esbuild would turn import() into require()).
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<Record<string, unknown>>;

// The little of the WebGPU API used here (lib.dom of our TypeScript has no WebGPU types).
interface GpuAdapterInfo { vendor?: string; architecture?: string; device?: string; description?: string }
interface GpuAdapter { info?: GpuAdapterInfo }
interface Gpu { requestAdapter(opts?: Record<string, unknown>): Promise<GpuAdapter | null> }

async function activateWebGpu(): Promise<string> {
  if (!process.env.WLM_DAWN_FLAGS && !hasVulkanLoader()) {
    throw new Error('no Vulkan loader (libvulkan.so.1) for Dawn; install the GPU driver\'s Vulkan support, or set WLM_DAWN_FLAGS to choose another Dawn backend');
  }
  let dawn: { create: (flags: string[]) => Gpu; globals?: Record<string, unknown> };
  try {
    dawn = (await importEsm(pathToFileURL(require.resolve('webgpu')).href)) as unknown as typeof dawn;
  } catch (err) {
    throw new Error(`the webgpu package is not available (${(err as Error).message.split('\n')[0]})`);
  }
  let gpu = dawn.create(process.env.WLM_DAWN_FLAGS ? process.env.WLM_DAWN_FLAGS.split(',') : []);
  if (process.env.WLM_WEBGPU_COMPAT) {
    // A compatibility-mode adapter (Dawn's OpenGL backend, see ENGINE-NOTES). tfjs requests its
    // own adapter without the feature level, so every request gets it added.
    const native = gpu;
    gpu = new Proxy(native, {
      get: (target, key) => key === 'requestAdapter'
        ? (opts?: Record<string, unknown>) => target.requestAdapter({ ...opts, featureLevel: 'compatibility' })
        : Reflect.get(target, key),
    });
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('Dawn found no WebGPU adapter');
  const info = adapter.info;
  // A software adapter (lavapipe, SwiftShader) is slower than wasm: do not prefer it.
  const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'unknown GPU';
  if (/llvmpipe|lavapipe|swiftshader|software/i.test(description) && !process.env.WLM_ALLOW_SOFTWARE_GPU) {
    throw new Error(`adapter "${description}" is a software renderer (slower than wasm)`);
  }
  const g = globalThis as unknown as { navigator?: { gpu?: Gpu } };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  Object.assign(globalThis, dawn.globals ?? {}); // GPUBufferUsage and friends, used by the backend
  try {
    require('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    throw new Error(`@tensorflow/tfjs-backend-webgpu failed to load (${(err as Error).message.split('\n')[0]})`);
  }
  await use('webgpu');
  return description;
}
