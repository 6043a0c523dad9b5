import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { XapiClient } from '@xsmeta/xapi';

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

/**
 * The old script's layout for one date with the pool's real exports of `vms`, as an ext3
 * image at `img` (mke2fs -d), then found by SR.scan.
 */
export async function legacyImage(
  x: XapiClient,
  vms: { uuid: string }[],
  sr: string,
  date: string,
  img: string,
): Promise<void> {
  const tree = mkdtempSync(join(tmpdir(), 'legacy-tree-'));
  try {
    writeFileSync(join(tree, '.ctxs-metadata-backup'), '1\n');
    mkdirSync(join(tree, 'metadata', date, 'all'), { recursive: true });
    for (const v of vms)
      writeFileSync(
        join(tree, 'metadata', date, 'all', `${v.uuid}.vmmeta`),
        await x.exportMetadata({ uuid: v.uuid }),
      );
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext3', '-b', '1024', '-d', tree, img, '8M'], {
      stdio: 'ignore',
    });
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
  await x.call('SR.scan', await x.call<string>('SR.get_by_uuid', sr));
}
