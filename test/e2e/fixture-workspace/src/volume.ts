// Conversions between units of volume. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts liters to gallons. */
export function litersToGallons(value: number): number {
  assertFinite(value, 'liters');
  return value * 0.264172;
}

/** Converts gallons to liters. */
export function gallonsToLiters(value: number): number {
  assertFinite(value, 'gallons');
  return value * 3.78541;
}

/** Converts milliliters to teaspoons. */
export function millilitersToTeaspoons(value: number): number {
  assertFinite(value, 'milliliters');
  return value * 0.202884;
}

/** Converts cups to milliliters. */
export function cupsToMilliliters(value: number): number {
  assertFinite(value, 'cups');
  return value * 236.588;
}

/** Converts pints to liters. */
export function pintsToLiters(value: number): number {
  assertFinite(value, 'pints');
  return value * 0.473176;
}

/** Converts quarts to liters. */
export function quartsToLiters(value: number): number {
  assertFinite(value, 'quarts');
  return value * 0.946353;
}

export const volumeConversions = {
  litersToGallons,
  gallonsToLiters,
  millilitersToTeaspoons,
  cupsToMilliliters,
  pintsToLiters,
  quartsToLiters,
};
