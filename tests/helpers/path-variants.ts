/**
 * Spellings of a path that some reader routes to another place than its plain reading says:
 * traversal written in every encoding, separators written in every encoding, case, doubled
 * slashes, path parameters, overlong UTF-8. Used by the red-team tests through each proxy
 * (a small fixed set) and by the fault tier's generated run (all combinations).
 */

/** `..` as a segment, however written. */
export const DOT_DOT = [
  '..',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2e.',
  '..;',
  '%2e%2e;',
  '.%252e',
  '%252e%252e',
  '%c0%ae%c0%ae',
  '%u002e%u002e',
  '..%00',
  '..%01',
];

/** `/` (or something read as one), however written. */
export const SEPARATORS = [
  '/',
  '%2f',
  '%2F',
  '\\',
  '%5c',
  '%5C',
  '%252f',
  '%c0%af',
  ';/',
  '%3b/',
  '//',
  '/./',
  '/%2e/',
  '%2f%2f',
  '%09/',
];

/**
 * Paths meant to reach `${parent}/${target}/x` from under `from` (a sibling of `target` under
 * `parent`), for example from `/servers/legacy` to `secret` in `/servers`.
 */
export function traversals(
  from: string,
  parent: string,
  target: string,
  dotDot = DOT_DOT,
  separators = SEPARATORS,
): string[] {
  const variants = new Set<string>();
  for (const dots of dotDot) {
    for (const sep of separators) {
      variants.add(`${from}/${dots}${sep}${target}/x`);
      variants.add(`${from}${sep}${dots}${sep}${target}/x`);
      variants.add(`${from}/y/${dots}${sep}${dots}${sep}${parent.slice(1)}${sep}${target}/x`);
    }
  }
  return [...variants];
}

/** Other spellings of `${parent}/${target}/x` itself: case, encoded letters, doubled slashes. */
export function respellings(parent: string, target: string): string[] {
  const plain = `${parent}/${target}/x`;
  const first = target[0]!;
  const encoded = `%${first.charCodeAt(0).toString(16)}`;
  return [
    plain.toUpperCase(),
    `${parent}/${target.toUpperCase()}/x`,
    `${parent}/${first.toUpperCase()}${target.slice(1)}/x`,
    `${parent}/${encoded}${target.slice(1)}/x`,
    `${parent}/${encoded.toUpperCase()}${target.slice(1)}/x`,
    `/${parent}/${target}/x`,
    `${parent}//${target}/x`,
    `${parent}/./${target}/x`,
    `${parent}/${target};x/x`,
    `${parent}/${target}%00/x`,
    `${parent}/${target}%20/x`,
    `${parent}/${target}%ef%bc%8fx`,
  ];
}
