// How a bench section run on its own (`node --import tsx bench/<section>.ts`) hands back its
// figures: the report as JSON on stdout (and in `outFile` when given), or the error's stack on
// stderr and exit code 1. `npm run bench` prints its whole report the same way (bench.ts).
import { writeFileSync } from 'node:fs';

export function printReport(report: Promise<unknown>, outFile?: string): void {
  report.then(
    (value) => {
      const json = JSON.stringify(value, null, 2);
      if (outFile) writeFileSync(outFile, json + '\n');
      process.stdout.write(json + '\n');
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exitCode = 1;
    },
  );
}
