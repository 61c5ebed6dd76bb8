// Input checks shared by the conversion modules.

/** Throws when value is not a finite number, naming the unit it was meant to be in. */
export function assertFinite(value: number, unit: string): void {
  if (!Number.isFinite(value)) {
    throw new RangeError(`expected a finite number of ${unit}, got ${value}`);
  }
}

/** Rounds value to the given number of decimal places. */
export function roundTo(value: number, places: number): number {
  const factor = 10 ** places;
  return Math.round(value * factor) / factor;
}
