// Atomic file writes: a crash, a kill or a full disk never leaves a half-written model file behind.
// Write to a temporary sibling, flush, then rename over the target (rename is atomic on POSIX); a
// write that fails removes its temporary file and leaves the target as it was.
import { promises as fs, openSync, writeSync, fsyncSync, closeSync, renameSync, mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
}

/**
 * For the fault suite only: asked before each write with the target file, a returned error is
 * raised half-way through the write, as a disk that fills up would. Never set in the product.
 */
let injectedFault: ((file: string) => NodeJS.ErrnoException | null) | null = null;
export function injectWriteFault(fault: typeof injectedFault): void {
  injectedFault = fault;
}

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/** A full disk in words, with what is left as it was; other failures pass through unchanged. */
function writeFailure(file: string, err: unknown, kept = `the previous ${path.basename(file)}, if there was one, is unchanged`): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === undefined || !DISK_FULL.has(code)) return err;
  const failure: UserError & { code?: string } = new UserError(`cannot write ${file}: the disk is full (${code}); ${kept} (hint: free some space and run again)`);
  failure.code = code;
  return failure;
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      const fault = injectedFault?.(file);
      if (fault) {
        await handle.writeFile(typeof data === 'string' ? data.slice(0, data.length >> 1) : data.subarray(0, data.length >> 1));
        throw fault;
      }
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw writeFailure(file, err);
  }
}

export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const fault = injectedFault?.(file);
      if (fault) throw fault;
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw writeFailure(file, err);
  }
}

/** Appends one JSON object as a line. Appends of a single short line are effectively atomic. */
export async function appendJsonLine(file: string, value: unknown): Promise<void> {
  try {
    await fs.appendFile(file, JSON.stringify(value) + '\n');
  } catch (err) {
    throw writeFailure(file, err, 'the lines before are kept');
  }
}
