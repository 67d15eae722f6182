import { GcError } from '@gc/core';

/**
 * Stable error codes of `@gc/placement`, on top of the `@gc/core` codes it also uses (`GC_INVALID_NAME`
 * for bad app and node names, `GC_INVALID_CONFIG` for bad specs and options).
 */
export const PlacementErrorCode = {
  /** A label selector that does not parse. */
  InvalidSelector: 'GC_PLACEMENT_INVALID_SELECTOR',
  /** An operation named a node that is not in the inventory. */
  UnknownNode: 'GC_PLACEMENT_UNKNOWN_NODE',
} as const;
/** One of {@link PlacementErrorCode}. */
export type PlacementErrorCodeValue = (typeof PlacementErrorCode)[keyof typeof PlacementErrorCode];

/** A label selector with bad syntax; `position` is the 0-based offset where parsing stopped. */
export class SelectorSyntaxError extends GcError {
  /** The selector text. */
  readonly selector: string;
  /** 0-based offset of the problem in `selector`. */
  readonly position: number;
  /** Where the selector came from (`apps.orders.placement.onLabel[0]`), when known. */
  readonly path: string | undefined;

  constructor(selector: string, position: number, problem: string, path?: string) {
    const at = position >= selector.length ? 'at the end' : `at position ${position}`;
    super(
      PlacementErrorCode.InvalidSelector,
      `${path ? `${path}: ` : ''}invalid label selector ${JSON.stringify(selector)}: ${problem} ${at}; selectors are comma-separated terms like disk=ssd, arch!=arm, zone in (a,b), zone notin (c), gpu, !gpu`,
    );
    this.name = 'SelectorSyntaxError';
    this.selector = selector;
    this.position = position;
    this.path = path;
  }
}

/** An operation named a node that the inventory does not have. */
export class UnknownNodeError extends GcError {
  readonly node: string;
  /** The known nodes when it was refused. */
  readonly nodes: readonly string[];

  constructor(node: string, nodes: readonly string[]) {
    super(
      PlacementErrorCode.UnknownNode,
      `node ${JSON.stringify(node)} is not in the inventory (nodes: ${nodes.join(', ') || 'none'}); check the node id`,
    );
    this.name = 'UnknownNodeError';
    this.node = node;
    this.nodes = nodes;
  }
}
