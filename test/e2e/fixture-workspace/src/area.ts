// Conversions between units of area. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts squareMeters to squareFeet. */
export function squareMetersToSquareFeet(value: number): number {
  assertFinite(value, 'squareMeters');
  return value * 10.7639;
}

/** Converts squareFeet to squareMeters. */
export function squareFeetToSquareMeters(value: number): number {
  assertFinite(value, 'squareFeet');
  return value * 0.092903;
}

/** Converts acres to hectares. */
export function acresToHectares(value: number): number {
  assertFinite(value, 'acres');
  return value * 0.404686;
}

/** Converts hectares to acres. */
export function hectaresToAcres(value: number): number {
  assertFinite(value, 'hectares');
  return value * 2.47105;
}

/** Converts squareMiles to squareKilometers. */
export function squareMilesToSquareKilometers(value: number): number {
  assertFinite(value, 'squareMiles');
  return value * 2.58999;
}

export const areaConversions = {
  squareMetersToSquareFeet,
  squareFeetToSquareMeters,
  acresToHectares,
  hectaresToAcres,
  squareMilesToSquareKilometers,
};
