/**
 * Shared by the packages' tests that drive a (simulated) pool through @xsmeta/xapi: a scratch
 * VDI on the pool's default SR, created with the full record `VDI.create` takes, and the
 * XapiError a call fails with.
 */
import {
  type PoolRecord,
  type SrRecord,
  type VdiRecord,
  type VmRecord,
  type XapiClient,
  XapiError,
} from '@xsmeta/xapi';
import { expect } from 'vitest';
import { rejection } from './reject.js';

/**
 * The XapiError `p` rejects with (or the function `p` throws or rejects with; anything else
 * fails the test); with `secret`, the test fails too if the error's message, params, stack or
 * JSON holds it.
 */
export async function xapiFailure(
  p: Promise<unknown> | (() => unknown),
  secret?: string,
): Promise<XapiError> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(XapiError);
  const err = e as XapiError;
  if (secret !== undefined)
    expect(
      `${err.message} ${err.params.join(' ')} ${err.stack ?? ''} ${JSON.stringify(err)}`,
    ).not.toContain(secret);
  return err;
}

export interface NewVdi {
  ref: string;
  uuid: string;
  /** The uuid of the SR it is on (the pool's default SR). */
  srUuid: string;
  record: VdiRecord;
}

/** A `user` VDI of `size` bytes on the default SR, read-write, not sharable. */
export async function newVdi(
  c: XapiClient,
  o: { size: number; name?: string; description?: string },
): Promise<NewVdi> {
  const [pool] = (await c.getAllRecords<PoolRecord>('pool')).values();
  const ref = await c.call<string>('VDI.create', {
    name_label: o.name ?? 'test VDI',
    name_description: o.description ?? '',
    SR: pool!.default_SR,
    virtual_size: o.size,
    type: 'user',
    sharable: false,
    read_only: false,
    other_config: {},
    xenstore_data: {},
    sm_config: {},
    tags: [],
  });
  const record = await c.getRecord<VdiRecord>('VDI', ref);
  const sr = await c.getRecord<SrRecord>('SR', record.SR);
  return { ref, uuid: record.uuid, srUuid: sr.uuid, record };
}

/**
 * A disk VBD of the control domain on `vdi`, created (not plugged) with the full record
 * `VBD.create` takes, as xsmeta's own attach makes it.
 */
export async function newDom0Vbd(
  c: XapiClient,
  vdi: string,
  o: { mode?: 'RO' | 'RW'; otherConfig?: Record<string, string> } = {},
): Promise<string> {
  const [dom0] = [...(await c.getAllRecords<VmRecord>('VM'))].find(([, v]) => v.is_control_domain)!;
  return c.call<string>('VBD.create', {
    VM: dom0,
    VDI: vdi,
    userdevice: 'autodetect',
    bootable: false,
    mode: o.mode ?? 'RW',
    type: 'Disk',
    unpluggable: true,
    empty: false,
    other_config: o.otherConfig ?? {},
    qos_algorithm_type: '',
    qos_algorithm_params: {},
  });
}
