// Conversions between units of length. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts meters to feet. */
export function metersToFeet(value: number): number {
  assertFinite(value, 'meters');
  return value * 3.28084;
}

/** Converts feet to meters. */
export function feetToMeters(value: number): number {
  assertFinite(value, 'feet');
  return value * 0.3048;
}

/** Converts kilometers to miles. */
export function kilometersToMiles(value: number): number {
  assertFinite(value, 'kilometers');
  return value * 0.621371;
}

/** Converts miles to kilometers. */
export function milesToKilometers(value: number): number {
  assertFinite(value, 'miles');
  return value * 1.609344;
}

/** Converts inches to centimeters. */
export function inchesToCentimeters(value: number): number {
  assertFinite(value, 'inches');
  return value * 2.54;
}

/** Converts centimeters to inches. */
export function centimetersToInches(value: number): number {
  assertFinite(value, 'centimeters');
  return value * 0.393701;
}

/** Converts yards to meters. */
export function yardsToMeters(value: number): number {
  assertFinite(value, 'yards');
  return value * 0.9144;
}

/** Converts meters to yards. */
export function metersToYards(value: number): number {
  assertFinite(value, 'meters');
  return value * 1.09361;
}

export const lengthConversions = {
  metersToFeet,
  feetToMeters,
  kilometersToMiles,
  milesToKilometers,
  inchesToCentimeters,
  centimetersToInches,
  yardsToMeters,
  metersToYards,
};
