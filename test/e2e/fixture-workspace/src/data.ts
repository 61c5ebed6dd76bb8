// Conversions between units of data. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts bytes to kilobytes. */
export function bytesToKilobytes(value: number): number {
  assertFinite(value, 'bytes');
  return value * 0.0009765625;
}

/** Converts kilobytes to megabytes. */
export function kilobytesToMegabytes(value: number): number {
  assertFinite(value, 'kilobytes');
  return value * 0.0009765625;
}

/** Converts megabytes to gigabytes. */
export function megabytesToGigabytes(value: number): number {
  assertFinite(value, 'megabytes');
  return value * 0.0009765625;
}

/** Converts gigabytes to terabytes. */
export function gigabytesToTerabytes(value: number): number {
  assertFinite(value, 'gigabytes');
  return value * 0.0009765625;
}

/** Converts bits to bytes. */
export function bitsToBytes(value: number): number {
  assertFinite(value, 'bits');
  return value * 0.125;
}

export const dataConversions = {
  bytesToKilobytes,
  kilobytesToMegabytes,
  megabytesToGigabytes,
  gigabytesToTerabytes,
  bitsToBytes,
};
