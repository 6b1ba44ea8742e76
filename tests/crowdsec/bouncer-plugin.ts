/**
 * Where the source of the CrowdSec bouncer plugin pinned in traefik/traefik.yml is, for the real
 * Traefik to load it as a local plugin: CROWDSEC_BOUNCER_PLUGIN_SOURCE (a checkout of the pinned
 * version), else what scripts/install-crowdsec-bouncer-plugin.sh put in .cache/. Traefik's Yaegi
 * interpreter runs the source, so its dependencies must be vendored next to it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { TRAEFIK_STATIC_FILE } from '../helpers/traefik.js';

/** The plugin's module and version as traefik/traefik.yml pins them. */
export function pinnedBouncerPlugin(): { moduleName: string; version: string } {
  const shipped = parse(readFileSync(TRAEFIK_STATIC_FILE, 'utf8')) as {
    experimental: { plugins: Record<string, { moduleName: string; version: string }> };
  };
  const plugin = Object.values(shipped.experimental.plugins)[0];
  if (!plugin) throw new Error('traefik/traefik.yml declares no plugin');
  return plugin;
}

function readVersion(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** The plugin's source folder, or why there is none. */
export function bouncerPluginSource(): { dir: string } | { missing: string } {
  const { moduleName, version } = pinnedBouncerPlugin();
  const dir =
    process.env.CROWDSEC_BOUNCER_PLUGIN_SOURCE ??
    path.resolve('.cache', 'traefik-plugins', 'src', moduleName);
  const goMod = path.join(dir, 'go.mod');
  if (!existsSync(goMod)) {
    return {
      missing:
        `no source of ${moduleName}@${version} in ${dir}: scripts/install-crowdsec-bouncer-plugin.sh ` +
        'puts it there when the Go module proxy serves it (the one the tests were run with refuses it), ' +
        'or set CROWDSEC_BOUNCER_PLUGIN_SOURCE to a checkout of that version',
    };
  }
  if (!readFileSync(goMod, 'utf8').includes(`module ${moduleName}\n`)) {
    return { missing: `${goMod} is not the module ${moduleName}` };
  }
  const installed = path.join(dir, '.version');
  if (!process.env.CROWDSEC_BOUNCER_PLUGIN_SOURCE && readVersion(installed) !== version) {
    return { missing: `${dir} is not ${version}: run scripts/install-crowdsec-bouncer-plugin.sh` };
  }
  if (!existsSync(path.join(dir, 'vendor', 'modules.txt'))) {
    return { missing: `${dir} has no vendor/ (Traefik's Yaegi needs the dependencies there)` };
  }
  return { dir };
}
