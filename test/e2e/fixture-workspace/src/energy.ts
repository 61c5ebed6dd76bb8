// Conversions between units of energy. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts joules to calories. */
export function joulesToCalories(value: number): number {
  assertFinite(value, 'joules');
  return value * 0.239006;
}

/** Converts calories to joules. */
export function caloriesToJoules(value: number): number {
  assertFinite(value, 'calories');
  return value * 4.184;
}

/** Converts kilowattHours to joules. */
export function kilowattHoursToJoules(value: number): number {
  assertFinite(value, 'kilowattHours');
  return value * 3600000.0;
}

/** Converts joules to kilowattHours. */
export function joulesToKilowattHours(value: number): number {
  assertFinite(value, 'joules');
  return value * 2.77778e-07;
}

/** Converts btu to joules. */
export function btuToJoules(value: number): number {
  assertFinite(value, 'btu');
  return value * 1055.06;
}

export const energyConversions = {
  joulesToCalories,
  caloriesToJoules,
  kilowattHoursToJoules,
  joulesToKilowattHours,
  btuToJoules,
};
