import { GcError } from '@gc/core';

/** Stable error codes of `@gc/vip`. A code never changes meaning once released. */
export const VipErrorCode = {
  ToolMissing: 'GC_VIP_TOOL_MISSING',
  PermissionDenied: 'GC_VIP_PERMISSION_DENIED',
  NoInterface: 'GC_VIP_NO_INTERFACE',
  NoNetns: 'GC_VIP_NO_NETNS',
  NotLeader: 'GC_VIP_NOT_LEADER',
  CommandFailed: 'GC_VIP_COMMAND_FAILED',
  AddressLost: 'GC_VIP_ADDRESS_LOST',
  InvalidAddress: 'GC_VIP_INVALID_ADDRESS',
} as const;
/** One of the codes in {@link VipErrorCode}. */
export type VipErrorCodeValue = (typeof VipErrorCode)[keyof typeof VipErrorCode];

/** Base class of the errors `@gc/vip` throws; `code` is one of {@link VipErrorCode}. */
export class VipError extends GcError {
  constructor(code: VipErrorCodeValue, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'VipError';
  }
}

/** A required OS tool (`ip`, `arping`) is not installed or not on PATH. */
export class VipToolMissingError extends VipError {
  /** The command that was not found, for example `arping`. */
  readonly tool: string;

  constructor(tool: string, hint: string, options?: ErrorOptions) {
    super(VipErrorCode.ToolMissing, `the \`${tool}\` command was not found on PATH: ${hint}`, options);
    this.name = 'VipToolMissingError';
    this.tool = tool;
  }
}

/** Acquire was refused because the caller holds no current leadership epoch. */
export class NotLeaderError extends VipError {
  constructor(message: string) {
    super(VipErrorCode.NotLeader, message);
    this.name = 'NotLeaderError';
  }
}

/** An `ip` or `arping` invocation failed; `stderr` holds what the tool said. */
export class VipCommandError extends VipError {
  /** The command line that failed. */
  readonly command: string;
  /** Exit code, or null when it was killed. */
  readonly exitCode: number | null;
  /** What the tool wrote to stderr (trimmed). */
  readonly stderr: string;

  constructor(
    code: VipErrorCodeValue,
    message: string,
    detail: { command: string; exitCode: number | null; stderr: string },
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'VipCommandError';
    this.command = detail.command;
    this.exitCode = detail.exitCode;
    this.stderr = detail.stderr;
  }
}
