// The old scripts' ext3 backup disks, made from a simulated pool's real exports, for the
// legacy tests (legacy, legacy-bounds, legacy-kill).
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';

export type Vm = {
  uuid: string;
  name_label: string;
  is_a_template: boolean;
  is_control_domain: boolean;
  is_a_snapshot: boolean;
  other_config: Record<string, string>;
  VBDs: string[];
};

export const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

export const xapiOf = (url: string) =>
  XapiClient.connect({ url, username: 'root', password: 'xsmeta' });

/** The pool's VDIs, and the VBDs xsmeta plugged on the control domain (none when idle). */
export async function countVdis(x: XapiClient): Promise<[number, number]> {
  const vdis = (await x.getAllRecords('VDI')).size;
  const vbds = [
    ...(await x.getAllRecords<{ other_config: Record<string, string> }>('VBD')).values(),
  ].filter((v) => v.other_config['xsmeta-attach'] === 'true').length;
  await x.logout();
  return [vdis, vbds];
}

/** Lists the pool's VMs and custom templates (what the old script exported). */
export async function poolVms(x: XapiClient): Promise<Vm[]> {
  return [...(await x.getAllRecords<Vm>('VM')).values()].filter(
    (v) => !v.is_control_domain && !v.is_a_snapshot && v.other_config.default_template !== 'true',
  );
}

/**
 * Writes the old xe-backup-metadata's layout (real metadata exports, SRMETA.xml, by-sr links,
 * rotated pool database dumps) for each date, and makes it an ext3 image with mke2fs -d. The
 * caller removes `tree`; `scannedLegacyImage` does, and has the SR find the image.
 */
export async function legacyImage(
  x: XapiClient,
  vms: { uuid: string }[],
  sr: string,
  dates: string[],
  img: string,
  blockSize: 1024 | 4096 = 1024,
  extra: (tree: string) => void = () => {},
): Promise<{ img: string; tree: string; poolUuid: string }> {
  const tree = mkdtempSync(join(tmpdir(), 'legacy-tree-'));
  writeFileSync(join(tree, '.ctxs-metadata-backup'), '1\n');
  const poolUuid = randomUUID();
  for (const [i, d] of [...dates].reverse().entries())
    writeFileSync(join(tree, `${poolUuid}.db${i ? `.${i}` : ''}`), `<database run="${d}"/>`);
  for (const date of dates) {
    const d = join(tree, 'metadata', date);
    mkdirSync(join(d, 'all'), { recursive: true });
    mkdirSync(join(d, 'by-sr', sr), { recursive: true });
    writeFileSync(
      join(d, 'SRMETA.xml'),
      `<meta><sr uuid="${sr}" name_label="legacy name of the SR" name_description=""/></meta>`,
    );
    for (const v of vms) {
      // As the old script's `xe vm-export --metadata`: no snapshots in the export.
      const meta = await x.exportMetadata({ uuid: v.uuid }, { exportSnapshots: false });
      writeFileSync(join(d, 'all', `${v.uuid}.vmmeta`), meta);
      symlinkSync(`../../all/${v.uuid}.vmmeta`, join(d, 'by-sr', sr, `${v.uuid}.vmmeta`));
    }
  }
  extra(tree);
  execFileSync(
    'mke2fs',
    ['-q', '-F', '-t', 'ext3', '-b', String(blockSize), '-d', tree, img, '32M'],
    {
      stdio: 'ignore',
    },
  );
  return { img, tree, poolUuid };
}

/** The pool's VMs (not the control domain, not templates) and its first SR. */
export async function vmsAndSr(x: XapiClient): Promise<{ vms: { uuid: string }[]; sr: string }> {
  const vms = [
    ...(
      await x.getAllRecords<{ uuid: string; is_control_domain: boolean; is_a_template: boolean }>(
        'VM',
      )
    ).values(),
  ].filter((v) => !v.is_control_domain && !v.is_a_template);
  const [sr] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
  return { vms, sr: sr!.uuid };
}

/** One date's legacy image at `img` (see legacyImage), then found by SR.scan. */
export async function scannedLegacyImage(
  x: XapiClient,
  vms: { uuid: string }[],
  sr: string,
  date: string,
  img: string,
): Promise<void> {
  const { tree } = await legacyImage(x, vms, sr, [date], img);
  rmSync(tree, { recursive: true, force: true });
  await x.call('SR.scan', await x.call<string>('SR.get_by_uuid', sr));
}
