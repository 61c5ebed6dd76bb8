// The PyTorch reference of the speed section: bench/torch_train.py (the default preset's GPT and
// AdamW in PyTorch, CPU) in a python3 child process, so that its peak RSS is its own, and the
// ratio of the product's default engine to torch in the same run. PyTorch is not a dependency:
// without a python3 that can `import torch` (Debian: apt-get install python3-torch
// libopenblas0-pthread) the section records why it was skipped.
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

export interface ProductSpeed {
  config: string;
  tokensPerSecond: number;
  gflopsPerSecond: number;
  peakRssMB: number;
}

/** The first python3 on PATH, or Debian's own (where python3-torch installs), that imports torch. */
function pythonWithTorch(): { python: string | null; tried: string[] } {
  const tried: string[] = [];
  for (const python of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (probe.status === 0) return { python, tried };
    tried.push(`${python}: ${probe.error ? probe.error.message : (probe.stderr.trim().split('\n').pop() ?? `exit ${probe.status}`)}`);
  }
  return { python: null, tried };
}

/**
 * Runs the reference; `product` is the default preset's run on the product's default engine
 * before it and a function that runs it again after, so that the ratio is taken against both.
 */
export function torchSpeed(preset: string, steps: number, product: [ProductSpeed, () => ProductSpeed], threads = 2) {
  const { python, tried } = pythonWithTorch();
  if (!python) {
    return { skipped: `no python3 here imports torch (${tried.join('; ')}); on Debian: apt-get install python3-torch libopenblas0-pthread` };
  }
  // torch's own pool has the threads; OpenBLAS (Debian's torch calls it for matmuls) would start
  // as many again inside each op and oversubscribe the cores. Idle OpenMP threads sleep instead of
  // spinning, as onnxruntime's do in the product (session.ts): on this shared 2-core machine,
  // spinning made the same run 382-507 tokens/s instead of 2105-2506.
  const env = {
    ...process.env,
    OMP_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1',
    OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE',
  };
  const out = execFileSync(python, [path.resolve('bench', 'torch_train.py'), '--preset', path.resolve('models', 'presets', `${preset}.json`), '--threads', String(threads), '--steps', String(steps)], {
    encoding: 'utf8',
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const torch = JSON.parse(out.trim().split('\n').pop()!) as { tokensPerSecond: number; gflopsPerSecond: number; peakRssMB: number };
  const runs = [product[0], product[1]()].map((r) => ({ config: r.config, tokensPerSecond: r.tokensPerSecond, gflopsPerSecond: r.gflopsPerSecond, peakRssMB: r.peakRssMB }));
  const productMean = (runs[0].tokensPerSecond + runs[1].tokensPerSecond) / 2;
  return {
    python,
    torch,
    product: runs, // before and after the torch run
    // Above 1: the product's training is faster than the PyTorch reference on the same cores.
    productOverTorch: +(productMean / torch.tokensPerSecond).toFixed(3),
  };
}
