import { GcError } from '@gc/core';

/** Stable error codes of placement operations in `@gc/platform`. */
export const PlacementOpErrorCode = {
  /** A move was refused: the target cannot run the app, is cordoned, lags, or the app cannot move. */
  MoveRefused: 'GC_PLACEMENT_MOVE_REFUSED',
  /** The platform has no placement bucket (no app with placement ran on it, or a wrong platform name). */
  NotFound: 'GC_PLACEMENT_NOT_FOUND',
} as const;

/** The placement bucket of a platform does not exist; nothing was created. */
export class PlacementNotFoundError extends GcError {
  constructor(platform: string, bucket: string, options?: ErrorOptions) {
    super(
      PlacementOpErrorCode.NotFound,
      `platform ${platform} has no placement bucket ${bucket}: no app with placement has run on it (or the platform name is wrong)`,
      options,
    );
    this.name = 'PlacementNotFoundError';
  }
}

/** `platform.placement().move(...)` refused the move; nothing was changed. `reason` says why and what would help. */
export class MoveRefusedError extends GcError {
  readonly app: string;
  readonly to: string;
  readonly reason: string;

  constructor(app: string, to: string, reason: string) {
    super(PlacementOpErrorCode.MoveRefused, `cannot move app ${app} to ${to}: ${reason}`);
    this.name = 'MoveRefusedError';
    this.app = app;
    this.to = to;
    this.reason = reason;
  }
}
