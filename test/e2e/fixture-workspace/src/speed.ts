// Conversions between units of speed. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts kmh to mph. */
export function kmhToMph(value: number): number {
  assertFinite(value, 'kmh');
  return value * 0.621371;
}

/** Converts mph to kmh. */
export function mphToKmh(value: number): number {
  assertFinite(value, 'mph');
  return value * 1.609344;
}

/** Converts knots to kmh. */
export function knotsToKmh(value: number): number {
  assertFinite(value, 'knots');
  return value * 1.852;
}

/** Converts kmh to knots. */
export function kmhToKnots(value: number): number {
  assertFinite(value, 'kmh');
  return value * 0.539957;
}

/** Converts metersPerSecond to kmh. */
export function metersPerSecondToKmh(value: number): number {
  assertFinite(value, 'metersPerSecond');
  return value * 3.6;
}

/** Converts kmh to metersPerSecond. */
export function kmhToMetersPerSecond(value: number): number {
  assertFinite(value, 'kmh');
  return value * 0.277778;
}

export const speedConversions = {
  kmhToMph,
  mphToKmh,
  knotsToKmh,
  kmhToKnots,
  metersPerSecondToKmh,
  kmhToMetersPerSecond,
};
