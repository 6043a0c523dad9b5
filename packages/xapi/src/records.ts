/**
 * Typed records of the XAPI classes xsmeta touches, with XAPI's own field names
 * (ocaml/idl/datamodel*.ml). Only the fields real pools return are listed; records carry more
 * fields on newer releases, hence the index signature.
 *
 * Representation (as the client hands them out, whatever the transport): refs are strings
 * (`OpaqueRef:<uuid>`, null ref `OpaqueRef:NULL`); `int` fields are numbers; `datetime`
 * fields are xapi's UTC strings `YYYYMMDDTHH:MM:SSZ`; maps are string-to-string objects.
 */

/** An opaque reference, `OpaqueRef:<uuid>`. */
export type XapiRef = string;
/** The null reference. */
export const NULL_REF = 'OpaqueRef:NULL';
/** A `(string -> string) map`. */
export type StringMap = { [key: string]: string };
/** A `datetime`, xapi form `20240101T12:00:00Z`. */
export type XapiDateTime = string;

interface Base {
  uuid: string;
  /** Fields of newer releases, or not typed here. */
  [field: string]: unknown;
}

interface Named extends Base {
  name_label: string;
  name_description: string;
}

export interface PoolRecord extends Named {
  master: XapiRef;
  default_SR: XapiRef;
  suspend_image_SR: XapiRef;
  crash_dump_SR: XapiRef;
  other_config: StringMap;
  ha_enabled: boolean;
  tags: string[];
  gui_config: StringMap;
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

export interface HostRecord extends Named {
  hostname: string;
  address: string;
  enabled: boolean;
  API_version_major: number;
  API_version_minor: number;
  API_version_vendor: string;
  software_version: StringMap;
  other_config: StringMap;
  resident_VMs: XapiRef[];
  PBDs: XapiRef[];
  PIFs: XapiRef[];
  control_domain: XapiRef;
  metrics: XapiRef;
  memory_overhead: number;
  cpu_info: StringMap;
  tags: string[];
}

export type SrContentType = 'user' | 'iso' | 'disk' | string;

export interface SrRecord extends Named {
  type: string;
  content_type: SrContentType;
  shared: boolean;
  VDIs: XapiRef[];
  PBDs: XapiRef[];
  virtual_allocation: number;
  physical_utilisation: number;
  physical_size: number;
  other_config: StringMap;
  sm_config: StringMap;
  tags: string[];
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

export type VdiType =
  | 'system'
  | 'user'
  | 'ephemeral'
  | 'suspend'
  | 'crashdump'
  | 'ha_statefile'
  | 'metadata'
  | 'redo_log'
  | 'rrd'
  | 'pvs_cache'
  | 'cbt_metadata';

export interface VdiRecord extends Named {
  SR: XapiRef;
  VBDs: XapiRef[];
  virtual_size: number;
  physical_utilisation: number;
  type: VdiType | string;
  sharable: boolean;
  read_only: boolean;
  managed: boolean;
  missing: boolean;
  is_a_snapshot: boolean;
  snapshot_of: XapiRef;
  snapshots: XapiRef[];
  snapshot_time: XapiDateTime;
  location: string;
  other_config: StringMap;
  sm_config: StringMap;
  xenstore_data: StringMap;
  storage_lock: boolean;
  parent: XapiRef;
  on_boot: 'reset' | 'persist' | string;
  allow_caching: boolean;
  metadata_of_pool: XapiRef;
  metadata_latest: boolean;
  tags: string[];
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

/** The record `VDI.create` takes. */
export interface VdiCreateSpec {
  name_label: string;
  name_description: string;
  SR: XapiRef;
  virtual_size: number;
  type: VdiType | string;
  sharable: boolean;
  read_only: boolean;
  other_config: StringMap;
  xenstore_data: StringMap;
  sm_config: StringMap;
  tags: string[];
}

export type VbdMode = 'RO' | 'RW';
export type VbdType = 'Disk' | 'CD' | 'Floppy';

export interface VbdRecord extends Base {
  VM: XapiRef;
  VDI: XapiRef;
  device: string;
  userdevice: string;
  bootable: boolean;
  mode: VbdMode;
  type: VbdType;
  unpluggable: boolean;
  empty: boolean;
  currently_attached: boolean;
  storage_lock: boolean;
  status_code: number;
  status_detail: string;
  other_config: StringMap;
  qos_algorithm_type: string;
  qos_algorithm_params: StringMap;
  metrics: XapiRef;
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

/** The record `VBD.create` takes. */
export interface VbdCreateSpec {
  VM: XapiRef;
  VDI: XapiRef;
  userdevice: string;
  bootable: boolean;
  mode: VbdMode;
  type: VbdType;
  unpluggable: boolean;
  empty: boolean;
  other_config: StringMap;
  qos_algorithm_type: string;
  qos_algorithm_params: StringMap;
}

export type VmPowerState = 'Halted' | 'Paused' | 'Running' | 'Suspended';

export interface VmRecord extends Named {
  power_state: VmPowerState;
  is_a_template: boolean;
  is_default_template: boolean;
  is_control_domain: boolean;
  is_a_snapshot: boolean;
  snapshot_of: XapiRef;
  snapshots: XapiRef[];
  snapshot_time: XapiDateTime;
  parent: XapiRef;
  resident_on: XapiRef;
  affinity: XapiRef;
  user_version: number;
  memory_static_max: number;
  memory_dynamic_max: number;
  memory_dynamic_min: number;
  memory_static_min: number;
  VCPUs_max: number;
  VCPUs_at_startup: number;
  VCPUs_params: StringMap;
  actions_after_shutdown: string;
  actions_after_reboot: string;
  actions_after_crash: string;
  VBDs: XapiRef[];
  VIFs: XapiRef[];
  VGPUs: XapiRef[];
  VTPMs: XapiRef[];
  PV_bootloader: string;
  PV_kernel: string;
  PV_ramdisk: string;
  PV_args: string;
  HVM_boot_policy: string;
  HVM_boot_params: StringMap;
  platform: StringMap;
  other_config: StringMap;
  xenstore_data: StringMap;
  blocked_operations: StringMap;
  tags: string[];
  domid: number;
  metrics: XapiRef;
  guest_metrics: XapiRef;
  suspend_VDI: XapiRef;
  suspend_SR: XapiRef;
  /** How many times this VM has been recovered (an `int` of ocaml/idl/datamodel_vm.ml). */
  version: number;
  ha_restart_priority: string;
  order: number;
  start_delay: number;
  shutdown_delay: number;
  appliance: XapiRef;
  has_vendor_device: boolean;
  generation_id: string;
  hardware_platform_version: number;
  domain_type: 'hvm' | 'pv' | 'pv_in_pvh' | 'pvh' | 'unspecified' | string;
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

export interface NetworkRecord extends Named {
  bridge: string;
  MTU: number;
  managed: boolean;
  VIFs: XapiRef[];
  PIFs: XapiRef[];
  other_config: StringMap;
  tags: string[];
  default_locking_mode: string;
  purpose: string[];
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

export interface VifRecord extends Base {
  device: string;
  network: XapiRef;
  VM: XapiRef;
  MAC: string;
  MAC_autogenerated: boolean;
  MTU: number;
  currently_attached: boolean;
  status_code: number;
  status_detail: string;
  locking_mode: string;
  ipv4_allowed: string[];
  ipv6_allowed: string[];
  other_config: StringMap;
  qos_algorithm_type: string;
  qos_algorithm_params: StringMap;
  metrics: XapiRef;
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

export type TaskStatus = 'pending' | 'success' | 'failure' | 'cancelling' | 'cancelled';

export interface TaskRecord extends Named {
  status: TaskStatus;
  progress: number;
  created: XapiDateTime;
  finished: XapiDateTime;
  resident_on: XapiRef;
  /** An XML-RPC `<value>` fragment, e.g. `<value>OpaqueRef:…</value>`; empty when none. */
  result: string;
  /** ErrorDescription-shaped: `[code, params…]`. */
  error_info: string[];
  type: string;
  other_config: StringMap;
  subtask_of: XapiRef;
  subtasks: XapiRef[];
  backtrace: string;
  allowed_operations: string[];
  current_operations: { [task: string]: string };
}

/** One entry of `event.from`'s `events`. */
export interface XapiEvent<T = unknown> {
  id: string | number;
  timestamp: string;
  class: string;
  operation: 'add' | 'mod' | 'del';
  ref: XapiRef;
  snapshot?: T;
}

/** What `event.from` returns. */
export interface EventFromResult {
  events: XapiEvent[];
  valid_ref_counts: { [cls: string]: number };
  token: string;
}

/** Class name (as in `<class>.get_all_records`) to record type. */
export interface XapiRecordTypes {
  pool: PoolRecord;
  host: HostRecord;
  SR: SrRecord;
  VDI: VdiRecord;
  VBD: VbdRecord;
  VM: VmRecord;
  network: NetworkRecord;
  VIF: VifRecord;
  task: TaskRecord;
}

/**
 * The `int` fields of each typed class. XML-RPC carries xapi's 64-bit ints as strings; the
 * client turns these into numbers so both transports give the same records.
 */
export const INT_FIELDS: { readonly [cls: string]: readonly string[] } = {
  host: ['API_version_major', 'API_version_minor', 'memory_overhead'],
  SR: ['virtual_allocation', 'physical_utilisation', 'physical_size'],
  VDI: ['virtual_size', 'physical_utilisation'],
  VBD: ['status_code'],
  VM: [
    'user_version',
    'memory_static_max',
    'memory_dynamic_max',
    'memory_dynamic_min',
    'memory_static_min',
    'memory_overhead',
    'memory_target',
    'VCPUs_max',
    'VCPUs_at_startup',
    'domid',
    'order',
    'start_delay',
    'shutdown_delay',
    'version',
    'hardware_platform_version',
  ],
  network: ['MTU'],
  VIF: ['MTU', 'status_code'],
  task: [],
};
