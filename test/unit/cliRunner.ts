// Runs the wlm command line from its sources, as a user's shell would, for the CLI tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function wlm(...args: string[]): CliRun {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'models', 'src', 'cli.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, WLM_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The error a user sees: one line starting "wlm: " that names what was wrong, a non-zero exit, no stack. */
export function assertCleanError(r: CliRun, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `exit code should be non-zero; stderr: ${r.stderr}`);
  const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('wlm: '));
  assert.equal(errorLines.length, 1, `one "wlm: " error line in: ${r.stderr}`);
  assert.match(errorLines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}
