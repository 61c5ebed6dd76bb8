// The in-host test entry (VS Code's extensionTestsPath): the extension host calls run(), which runs
// the mocha suites bundled beside this file and writes one JSON summary to $WLM_E2E_RESULTS for
// test/e2e/run.ts to count. It holds no test itself.
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import Mocha from 'mocha';

export interface HostTestResult {
  title: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 90_000, reporter: 'spec' });
  mocha.addFile(path.join(__dirname, 'extension.test.js'));
  const results: HostTestResult[] = [];
  const resultsFile = process.env.WLM_E2E_RESULTS;
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      if (resultsFile) writeFileSync(resultsFile, JSON.stringify(results, null, 2));
      if (failures > 0) reject(new Error(`${failures} in-host test(s) failed`));
      else resolve();
    });
    runner.on('pass', (test) => results.push({ title: test.fullTitle(), ok: true, ms: test.duration ?? 0 }));
    runner.on('fail', (test, err: Error) => results.push({ title: test.fullTitle(), ok: false, ms: test.duration ?? 0, error: err.message }));
  });
}
