// How a bench section run on its own (`node --import tsx bench/<section>.ts`) hands back its
// figures: the report as JSON on stdout (and in `outFile` when given), or the error's stack on
// stderr and exit code 1. `npm run bench` prints its whole report the same way (bench.ts), and
// its child processes their results on one line (`compact`), the last line their parent reads.
import { writeFileSync } from 'node:fs';

export function printReport(report: Promise<unknown>, outFile?: string, compact = false): void {
  report.then(
    (value) => {
      const json = compact ? JSON.stringify(value) : JSON.stringify(value, null, 2);
      if (outFile) writeFileSync(outFile, json + '\n');
      process.stdout.write(json + '\n');
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exitCode = 1;
    },
  );
}
