// Fetches the pinned npm packages listed in a JSON file with `npm pack`, checks each tarball's
// sha512 against its pinned integrity string and each listed file's sha256 after unpacking, and
// unpacks it into <dest>/<scope>/<name>/. A package already unpacked and verified (its
// .avatar-verified stamp holds the same integrity string) is skipped, so a second run does no
// network work. Nothing is installed and no package script runs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [listFile, dest] = process.argv.slice(2);
if (!listFile || !dest) {
    console.error('usage: node fetch_npm_packages.mjs deps/npm-packages.json third_party/npm');
    process.exit(2);
}
const log = (msg) => console.error(`[setup] ${msg}`);
const sha = (algo, file, encoding) => createHash(algo).update(fs.readFileSync(file)).digest(encoding);

const { packages } = JSON.parse(fs.readFileSync(listFile, 'utf8'));
fs.mkdirSync(dest, { recursive: true });
let fetched = 0;
for (const pkg of packages) {
    const spec = `${pkg.name}@${pkg.version}`;
    const target = path.join(dest, pkg.name);
    const stamp = path.join(target, '.avatar-verified');
    if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === pkg.integrity) continue;

    log(`fetching ${spec} (${(pkg.bytes / 1e6).toFixed(1)} MB)`);
    const work = fs.mkdtempSync(path.join(dest, '.fetch-'));
    try {
        const out = execFileSync('npm', ['pack', spec, '--ignore-scripts', '--silent',
                                         '--pack-destination', work], { encoding: 'utf8' });
        const tarball = path.join(work, out.trim().split('\n').pop());
        const [algo, expected] = pkg.integrity.split(/-(.*)/s);
        const actual = sha(algo, tarball, 'base64');
        if (actual !== expected) {
            throw new Error(`${spec}: ${algo} of the tarball is ${actual}, expected ${expected}`);
        }
        const unpacked = path.join(work, 'unpacked');
        fs.mkdirSync(unpacked);
        execFileSync('tar', ['xzf', tarball, '-C', unpacked, '--no-same-owner']);
        for (const [file, want] of Object.entries(pkg.files_sha256 || {})) {
            const p = path.join(unpacked, file);
            if (!fs.existsSync(p)) throw new Error(`${spec}: ${file} missing from the tarball`);
            const got = sha('sha256', p, 'hex');
            if (got !== want) throw new Error(`${spec}: sha256 of ${file} is ${got}, expected ${want}`);
        }
        fs.writeFileSync(path.join(unpacked, 'package', '.avatar-verified'), pkg.integrity + '\n');
        // Replace any stale copy only once the new one is complete.
        fs.rmSync(target, { recursive: true, force: true });
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.renameSync(path.join(unpacked, 'package'), target);
        fetched++;
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}
log(fetched ? `npm packages: fetched ${fetched}, all ${packages.length} verified`
            : `npm packages: all ${packages.length} present and verified`);
