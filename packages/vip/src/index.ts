export { createVip } from './vip.js';
export { defaultVipOptions, defaultArpOptions } from './options.js';
export { vipConfigSchema } from './schema.js';
export type { VipConfig } from './schema.js';
export { VipState } from './types.js';
export type { Vip, VipOptions, ArpOptions, VipEvent, VipStateValue, AcquireResult } from './types.js';
export { VipErrorCode, VipError, VipToolMissingError, NotLeaderError, VipCommandError } from './errors.js';
export type { VipErrorCodeValue } from './errors.js';
export {
  ipAddrAddArgs,
  ipAddrDelArgs,
  ipAddrShowArgs,
  arpingArgs,
  arpingSucceeded,
  detectArpingFlavor,
  parseAddrShow,
  hasAddress,
  classifyIpError,
  validateAddress,
} from './commands.js';
export type {
  Argv,
  ArpMode,
  ArpingFlavor,
  ArpingCall,
  NetnsTarget,
  InterfaceInfo,
  InterfaceAddress,
  IpFailure,
} from './commands.js';
export { vipComponent } from './component.js';
export type { VipComponentOptions } from './component.js';
