import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { readMachineBusyTicks } from './cpu.js';

/** The machine and tool versions a set of figures was measured on, printed with the figures. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemoryGiB: number;
  kernel: string;
  node: string;
  distribution: string;
  nginx: string;
  wrk: string;
  ab: string;
}

function firstLineOf(command: string, args: string[]): string {
  try {
    // nginx -v and wrk -v write to stderr, and wrk -v exits non-zero: capture both streams.
    const out = execFileSync('sh', ['-c', '"$0" "$@" 2>&1 || true', command, ...args], {
      encoding: 'utf8',
    });
    return out.split('\n')[0]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function describeMachine(tools: { distribution: string; nginx: string; wrk: string; ab: string }): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  return {
    cpus: os.availableParallelism(),
    cpuModel: model,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    // "/usr/bin/docker-registry github.com/docker/distribution 2.8.2+ds1" -> "Distribution 2.8.2+ds1"
    distribution: `Distribution ${firstLineOf(tools.distribution, ['--version']).split(' ').pop()}`,
    // "nginx version: nginx/1.22.1"
    nginx: firstLineOf(tools.nginx, ['-v']).replace(/^nginx version:\s*/, ''),
    // "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"
    wrk: firstLineOf(tools.wrk, ['-v']).replace(/\s*\[.*$/, ''),
    // "This is ApacheBench, Version 2.3 <$Revision$>"
    ab: firstLineOf(tools.ab, ['-V']).replace(/^This is ApacheBench, Version\s*([^\s]+).*$/, 'ab $1'),
  };
}

/**
 * How busy the machine is before the bench starts anything, as % of one core over `ms`: other
 * sessions share it, and a busy machine makes every figure noisy.
 */
export async function sampleBackgroundLoad(ticksPerSecond: number, ms = 1_000): Promise<number> {
  const before = readMachineBusyTicks();
  await sleep(ms);
  return Math.round(((readMachineBusyTicks() - before) / ticksPerSecond / (ms / 1000)) * 100);
}
