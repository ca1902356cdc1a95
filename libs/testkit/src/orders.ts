/**
 * Every order of `items` (n! of them): for tests that deliver the same changes in each order a
 * region or the catalog could receive them.
 */
export function everyOrder<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => everyOrder([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}
