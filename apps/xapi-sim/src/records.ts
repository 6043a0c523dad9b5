// New records of each class with the full field set xapi returns (ocaml/idl/datamodel*.ml),
// and the xapi and database schema versions the simulated host reports. seed.ts fills a pool
// with them; pool.ts and the import make them as xapi's calls do.
import { NULL, type Rec } from './model.js';
import type { Prng } from './prng.js';

const NOW = '20261125T00:00:00Z';
export const GiB = 1024 ** 3;

export const XAPI_MAJOR = 2;
export const XAPI_MINOR = 21;
export const SCHEMA_MAJOR = 5;
export const SCHEMA_MINOR = 785;

export function mac(r: Prng): string {
  return ['02', ...Array.from({ length: 5 }, () => r.int(256).toString(16).padStart(2, '0'))].join(
    ':',
  );
}

/** A VM record with the full field set of XAPI's VM class. */
export function vmRecord(o: {
  uuid: string;
  name: string;
  desc?: string;
  template?: boolean;
  defaultTemplate?: boolean;
  control?: boolean;
  snapshotOf?: string;
  macSeed: string;
  memory: number;
  vcpus: number;
  residentOn?: string;
  power?: string;
}): Rec {
  const mem = String(o.memory);
  return {
    uuid: o.uuid,
    allowed_operations: o.template
      ? ['clone', 'copy', 'export', 'destroy']
      : ['start', 'clone', 'copy', 'export', 'snapshot', 'destroy', 'changing_memory_limits'],
    current_operations: {},
    name_label: o.name,
    name_description: o.desc ?? '',
    power_state: o.power ?? 'Halted',
    user_version: 1,
    is_a_template: o.template ?? false,
    is_default_template: o.defaultTemplate ?? false,
    suspend_VDI: NULL,
    resident_on: o.residentOn ?? NULL,
    scheduled_to_be_resident_on: NULL,
    affinity: NULL,
    memory_overhead: String(Math.ceil(o.memory / 128)),
    memory_target: mem,
    memory_static_max: mem,
    memory_dynamic_max: mem,
    memory_dynamic_min: mem,
    memory_static_min: String(Math.min(o.memory, 512 * 1024 * 1024)),
    VCPUs_params: {},
    VCPUs_max: String(o.vcpus),
    VCPUs_at_startup: String(o.vcpus),
    actions_after_softreboot: 'soft_reboot',
    actions_after_shutdown: 'destroy',
    actions_after_reboot: 'restart',
    actions_after_crash: 'restart',
    consoles: [],
    VIFs: [],
    VBDs: [],
    VUSBs: [],
    crash_dumps: [],
    VTPMs: [],
    PV_bootloader: '',
    PV_kernel: '',
    PV_ramdisk: '',
    PV_args: '',
    PV_bootloader_args: '',
    PV_legacy_args: '',
    HVM_boot_policy: o.control ? '' : 'BIOS order',
    HVM_boot_params: o.control ? {} : { order: 'cdn', firmware: 'bios' },
    HVM_shadow_multiplier: 1,
    platform: o.control
      ? {}
      : {
          timeoffset: '0',
          'device-model': 'qemu-upstream-compat',
          apic: 'true',
          pae: 'true',
          acpi: '1',
          hpet: 'true',
          viridian: 'true',
          nx: 'true',
          vga: 'std',
          videoram: '8',
          cores_per_socket: String(o.vcpus),
        },
    PCI_bus: '',
    other_config: {
      mac_seed: o.macSeed,
      base_template_name: 'Other install media',
      import_task: NULL,
      install_methods: 'cdrom',
      vgpu_pci: '',
      ...(o.defaultTemplate ? { default_template: 'true' } : {}),
    },
    domid: o.control ? '0' : '-1',
    domarch: o.control ? 'x64' : '',
    last_boot_CPU_flags: o.control
      ? {}
      : {
          vendor: 'GenuineIntel',
          features:
            '1fcbfbff-f7fa3223-2c100800-00000121-0000000f-209c07ab-00000000-00000000-00001000-ac000400-00000000-00000000',
        },
    is_control_domain: o.control ?? false,
    metrics: NULL,
    guest_metrics: NULL,
    last_booted_record: '',
    recommendations:
      o.template || o.defaultTemplate
        ? '<restrictions><restriction field="memory-static-max" max="1649267441664"/><restriction field="vcpus-max" max="32"/><restriction property="number-of-vbds" max="255"/><restriction property="number-of-vifs" max="7"/><restriction field="has-vendor-device" value="false"/></restrictions>'
        : '',
    xenstore_data: o.control ? {} : { 'vm-data': '', 'vm-data/mmio-hole-size': '268435456' },
    ha_always_run: false,
    ha_restart_priority: '',
    is_a_snapshot: Boolean(o.snapshotOf),
    snapshot_of: o.snapshotOf ?? NULL,
    snapshots: [],
    snapshot_time: o.snapshotOf ? NOW : '19700101T00:00:00Z',
    transportable_snapshot_id: '',
    blobs: {},
    tags: [],
    blocked_operations: {},
    snapshot_info: {},
    snapshot_metadata: '',
    parent: NULL,
    children: [],
    bios_strings: o.control
      ? {}
      : {
          'bios-vendor': 'Xen',
          'bios-version': '',
          'system-manufacturer': 'Xen',
          'system-product-name': 'HVM domU',
          'system-version': '',
          'system-serial-number': '',
          'baseboard-manufacturer': '',
          'baseboard-product-name': '',
          'enclosure-asset-tag': '',
          'hp-rombios': '',
          oem_1: 'Xen',
          oem_2: 'MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d',
        },
    protection_policy: NULL,
    is_snapshot_from_vmpp: false,
    snapshot_schedule: NULL,
    is_vmss_snapshot: false,
    appliance: NULL,
    start_delay: '0',
    shutdown_delay: '0',
    order: '0',
    VGPUs: [],
    attached_PCIs: [],
    suspend_SR: NULL,
    version: '0',
    generation_id: o.control ? '' : '0:0',
    hardware_platform_version: '0',
    has_vendor_device: false,
    requires_reboot: false,
    reference_label: '',
    domain_type: o.control ? 'pv' : 'hvm',
    NVRAM: {},
    pending_guidances: [],
    pending_guidances_recommended: [],
    pending_guidances_full: [],
  };
}

export function vdiRecord(o: {
  uuid: string;
  name: string;
  desc?: string;
  sr: string;
  size: number;
  type?: string;
  readOnly?: boolean;
}): Rec {
  return {
    uuid: o.uuid,
    name_label: o.name,
    name_description: o.desc ?? '',
    allowed_operations: ['clone', 'destroy', 'resize', 'update', 'copy', 'snapshot'],
    current_operations: {},
    SR: o.sr,
    VBDs: [],
    crash_dumps: [],
    virtual_size: String(o.size),
    physical_utilisation: String(Math.floor(o.size / 3)),
    type: o.type ?? 'user',
    sharable: false,
    read_only: o.readOnly ?? false,
    other_config: {},
    storage_lock: false,
    location: o.uuid,
    managed: true,
    missing: false,
    parent: NULL,
    xenstore_data: {},
    sm_config: {},
    is_a_snapshot: false,
    snapshot_of: NULL,
    snapshots: [],
    snapshot_time: '19700101T00:00:00Z',
    tags: [],
    allow_caching: false,
    on_boot: 'persist',
    metadata_of_pool: NULL,
    metadata_latest: false,
    is_tools_iso: false,
    cbt_enabled: false,
  };
}

export function srRecord(o: {
  uuid: string;
  name: string;
  desc?: string;
  shared?: boolean;
  type?: string;
}): Rec {
  return {
    uuid: o.uuid,
    name_label: o.name,
    name_description: o.desc ?? '',
    allowed_operations: [
      'vdi_create',
      'vdi_destroy',
      'scan',
      'vdi_introduce',
      'vdi_snapshot',
      'vdi_clone',
    ],
    current_operations: {},
    VDIs: [],
    PBDs: [],
    virtual_allocation: '0',
    physical_utilisation: '0',
    physical_size: String(2048 * GiB),
    type: o.type ?? 'nfs',
    content_type: o.type === 'iso' ? 'iso' : 'user',
    shared: o.shared ?? true,
    other_config: {},
    tags: [],
    sm_config: {},
    blobs: {},
    local_cache_enabled: false,
    introduced_by: NULL,
    clustered: false,
    is_tools_sr: false,
  };
}

export function vbdRecord(o: {
  uuid: string;
  vm: string;
  vdi: string;
  userdevice: string;
  type: 'Disk' | 'CD';
  bootable?: boolean;
  empty?: boolean;
  mode?: string;
  other_config?: Record<string, string>;
  device?: string;
  attached?: boolean;
}): Rec {
  return {
    uuid: o.uuid,
    allowed_operations: ['attach', 'plug'],
    current_operations: {},
    VM: o.vm,
    VDI: o.vdi,
    device: o.device ?? '',
    userdevice: o.userdevice,
    bootable: o.bootable ?? false,
    mode: o.mode ?? (o.type === 'CD' ? 'RO' : 'RW'),
    type: o.type,
    unpluggable: true,
    storage_lock: false,
    empty: o.empty ?? false,
    other_config: { ...o.other_config },
    currently_attached: o.attached ?? false,
    status_code: '0',
    status_detail: '',
    runtime_properties: {},
    qos_algorithm_type: '',
    qos_algorithm_params: {},
    qos_supported_algorithms: [],
    metrics: NULL,
  };
}

export function vifRecord(o: {
  uuid: string;
  vm: string;
  network: string;
  device: string;
  mac: string;
}): Rec {
  return {
    uuid: o.uuid,
    allowed_operations: ['attach', 'plug'],
    current_operations: {},
    device: o.device,
    network: o.network,
    VM: o.vm,
    MAC: o.mac,
    MTU: '1500',
    other_config: {},
    currently_attached: false,
    status_code: '0',
    status_detail: '',
    runtime_properties: {},
    qos_algorithm_type: '',
    qos_algorithm_params: {},
    qos_supported_algorithms: [],
    metrics: NULL,
    MAC_autogenerated: false,
    locking_mode: 'network_default',
    ipv4_allowed: [],
    ipv6_allowed: [],
    ipv4_configuration_mode: 'None',
    ipv4_addresses: [],
    ipv4_gateway: '',
    ipv6_configuration_mode: 'None',
    ipv6_addresses: [],
    ipv6_gateway: '',
  };
}

export function networkRecord(o: { uuid: string; name: string; bridge: string }): Rec {
  return {
    uuid: o.uuid,
    name_label: o.name,
    name_description: '',
    allowed_operations: [],
    current_operations: {},
    VIFs: [],
    PIFs: [],
    MTU: '1500',
    other_config: {},
    bridge: o.bridge,
    managed: true,
    blobs: {},
    tags: [],
    default_locking_mode: 'unlocked',
    assigned_ips: {},
    purpose: [],
  };
}
