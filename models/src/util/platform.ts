// Facts about this machine that decide which GPU paths are worth trying. Trying a path that
// cannot work is not free: Dawn prints a native "Couldn't load Vulkan" warning on stderr each time.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const VULKAN_LOADER = 'libvulkan.so.1';
let vulkanLoader: boolean | undefined;

/**
 * Whether the Vulkan loader can be found. Dawn (WebGPU) needs it on Linux unless told to use
 * another backend; on macOS and Windows WebGPU runs on Metal or Direct3D, so the answer is yes.
 */
export function hasVulkanLoader(): boolean {
  if (process.platform !== 'linux') return true;
  if (vulkanLoader !== undefined) return vulkanLoader;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  vulkanLoader = dirs.some((dir) => existsSync(path.join(dir, VULKAN_LOADER))) || inLinkerCache(VULKAN_LOADER);
  return vulkanLoader;
}

function inLinkerCache(lib: string): boolean {
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    if (!existsSync(ldconfig)) continue;
    try {
      return execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes(lib);
    } catch {
      return false;
    }
  }
  return false;
}
