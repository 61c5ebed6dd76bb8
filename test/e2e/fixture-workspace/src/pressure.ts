// Conversions between units of pressure. Each function takes a finite number and returns the converted value.
import { assertFinite } from './check';

/** Converts pascals to psi. */
export function pascalsToPsi(value: number): number {
  assertFinite(value, 'pascals');
  return value * 0.000145038;
}

/** Converts psi to pascals. */
export function psiToPascals(value: number): number {
  assertFinite(value, 'psi');
  return value * 6894.76;
}

/** Converts bars to psi. */
export function barsToPsi(value: number): number {
  assertFinite(value, 'bars');
  return value * 14.5038;
}

/** Converts psi to bars. */
export function psiToBars(value: number): number {
  assertFinite(value, 'psi');
  return value * 0.0689476;
}

/** Converts atmospheres to pascals. */
export function atmospheresToPascals(value: number): number {
  assertFinite(value, 'atmospheres');
  return value * 101325;
}

export const pressureConversions = {
  pascalsToPsi,
  psiToPascals,
  barsToPsi,
  psiToBars,
  atmospheresToPascals,
};
