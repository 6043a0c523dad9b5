#!/usr/bin/env node
// The simplest client an administrator could script (issue 19's baseline): plain node:http,
// none of our packages, one keep-alive agent with a single socket, every request in sequence.
//   backup DIR   the pool database dump, then one GET /export_metadata per VM, each written
//                uncompressed to DIR (the VMs the old xe-backup-metadata exports)
//   restore DIR  one PUT /import_metadata per DIR/*.vmmeta (restore=true), in sequence
//   list         prints a session id then the uuids to back up (for legacy-loop.sh)
// Connection from XSMETA_URL, XSMETA_USERNAME, XSMETA_PASSWORD (an http:// simulator).
// Exits 1 on the first failed request. Prints one JSON line: { vms, ok, cpuMs, maxRssKiB }.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

const base = new URL(process.env.XSMETA_URL);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        agent,
        headers: body ? { 'content-length': body.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          if (res.statusCode !== 200 || !res.complete)
            reject(new Error(`${method} ${path.split('?')[0]}: HTTP ${res.statusCode}`));
          else resolve(buf);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function rpc(method, params) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }));
  const reply = JSON.parse((await request('POST', '/jsonrpc', body)).toString());
  if (reply.error) throw new Error(`${method}: ${JSON.stringify(reply.error)}`);
  return reply.result;
}

const login = () =>
  rpc('session.login_with_password', [
    process.env.XSMETA_USERNAME ?? 'root',
    process.env.XSMETA_PASSWORD ?? '',
    '1.0',
    'bench-baseline',
  ]);

/** The VMs the old script exports: not dom0, not snapshots, not default templates. */
async function vmUuids(session) {
  const vms = Object.values(await rpc('VM.get_all_records', [session]));
  return vms
    .filter(
      (vm) =>
        !vm.is_control_domain &&
        !vm.is_a_snapshot &&
        !(vm.is_a_template && vm.other_config?.default_template === 'true'),
    )
    .map((vm) => vm.uuid);
}

const [cmd, dir] = process.argv.slice(2);
const session = await login();
const q = (s) => `session_id=${encodeURIComponent(s)}`;
let vms = 0;
let ok = 0;
if (cmd === 'list') {
  process.stdout.write(`${session}\n${(await vmUuids(session)).join('\n')}\n`);
  process.exit(0);
} else if (cmd === 'backup') {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'pool-database.xml'),
    await request('GET', `/pool/xmldbdump?${q(session)}`),
  );
  const uuids = await vmUuids(session);
  vms = uuids.length;
  for (const uuid of uuids) {
    const tar = await request(
      'GET',
      `/export_metadata?${q(session)}&uuid=${uuid}&export_snapshots=false`,
    );
    writeFileSync(join(dir, `${uuid}.vmmeta`), tar);
    ok++;
  }
} else if (cmd === 'restore') {
  const files = readdirSync(dir).filter((f) => f.endsWith('.vmmeta'));
  vms = files.length;
  for (const f of files) {
    await request(
      'PUT',
      `/import_metadata?${q(session)}&restore=true&force=false&dry_run=false`,
      readFileSync(join(dir, f)),
    );
    ok++;
  }
} else {
  process.stderr.write('usage: baseline-client.mjs backup|restore|list DIR\n');
  process.exit(2);
}
await rpc('session.logout', [session]);
agent.destroy();
const cpu = process.cpuUsage();
process.stdout.write(
  `${JSON.stringify({ vms, ok, cpuMs: (cpu.user + cpu.system) / 1000, maxRssKiB: process.resourceUsage().maxRSS })}\n`,
);
