// metrics.jsonl, the training log: one JSON record per logged optimiser step, appended by train.ts
// as it trains. This file owns the record (StepMetrics) and the one reader of the log, used by the
// trainer (to cut the log back when a run resumes), the language server and the metrics panel.
// It writes nothing and imports nothing, so the panel's browser bundle can carry it.

/** One logged optimiser step: a line of metrics.jsonl, and the workspaceLm/metrics notification. */
export interface StepMetrics {
  step: number; // optimizer steps completed
  tokens: number; // training tokens seen so far
  trainLoss: number; // mean loss over this step's batch
  valLoss?: number; // present when this step ended with an evaluation
  lr: number;
  gradNorm: number; // global L2 norm before clipping
  tokensPerSecond: number; // this step's tokens over its compute time (evaluation excluded)
  elapsedMs: number; // training wall time, across resumes
}

/** What a metrics.jsonl holds, as far as it can be read. */
export interface MetricsLog {
  metrics: StepMetrics[]; // in step order, one record per step
  badLines: number; // lines that are not a record: a half-written last line after a kill, hand edits
}

/**
 * Reads metrics.jsonl's text. Never throws on its content: a line that is not a record is counted
 * in badLines, because a half-written last line is normal while a run trains. A step logged again
 * (a run resumed from an earlier checkpoint redoes the steps after it) replaces the earlier records
 * from that step on.
 */
export function readMetricsLog(text: string): MetricsLog {
  const metrics: StepMetrics[] = [];
  let badLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const record = parseLine(line);
    if (record) appendInPlace(metrics, record);
    else badLines++;
  }
  return { metrics, badLines };
}

/**
 * A checked copy of one record, or undefined when it has no finite `step` and `trainLoss`; other
 * figures that are missing or not finite read as 0. Also checks a live notification's record.
 */
export function toStepMetrics(raw: unknown): StepMetrics | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const step = finite(r.step);
  const trainLoss = finite(r.trainLoss);
  if (step === undefined || trainLoss === undefined) return undefined;
  const valLoss = finite(r.valLoss);
  // The field order train.ts writes, so a log cut back on resume reads as it was written.
  return {
    step,
    tokens: finite(r.tokens) ?? 0,
    trainLoss,
    ...(valLoss !== undefined ? { valLoss } : {}),
    lr: finite(r.lr) ?? 0,
    gradNorm: finite(r.gradNorm) ?? 0,
    tokensPerSecond: finite(r.tokensPerSecond) ?? 0,
    elapsedMs: finite(r.elapsedMs) ?? 0,
  };
}

/**
 * Adds records to a series kept in step order, as readMetricsLog does: a record at or before the
 * last step replaces the records from its step on. Returns a new array; `series` is not modified.
 */
export function appendMetrics(series: readonly StepMetrics[], incoming: readonly StepMetrics[]): StepMetrics[] {
  const out = series.slice();
  for (const record of incoming) appendInPlace(out, record);
  return out;
}

function appendInPlace(series: StepMetrics[], record: StepMetrics): void {
  let keep = series.length;
  while (keep > 0 && series[keep - 1].step >= record.step) keep--;
  series.length = keep;
  series.push(record);
}

function parseLine(line: string): StepMetrics | undefined {
  try {
    return toStepMetrics(JSON.parse(line));
  } catch {
    return undefined;
  }
}

function finite(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
