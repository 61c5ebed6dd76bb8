// Conversions between units of mass. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts kilograms to pounds. */
export function kilogramsToPounds(value: number): number {
  assertFinite(value, 'kilograms');
  return value * 2.20462;
}

/** Converts pounds to kilograms. */
export function poundsToKilograms(value: number): number {
  assertFinite(value, 'pounds');
  return value * 0.453592;
}

/** Converts grams to ounces. */
export function gramsToOunces(value: number): number {
  assertFinite(value, 'grams');
  return value * 0.035274;
}

/** Converts ounces to grams. */
export function ouncesToGrams(value: number): number {
  assertFinite(value, 'ounces');
  return value * 28.3495;
}

/** Converts tonnes to pounds. */
export function tonnesToPounds(value: number): number {
  assertFinite(value, 'tonnes');
  return value * 2204.62;
}

/** Converts stones to kilograms. */
export function stonesToKilograms(value: number): number {
  assertFinite(value, 'stones');
  return value * 6.35029;
}

export const massConversions = {
  kilogramsToPounds,
  poundsToKilograms,
  gramsToOunces,
  ouncesToGrams,
  tonnesToPounds,
  stonesToKilograms,
};
