// Atomic writes: a file or a directory is written under a temporary sibling name, flushed to disk, then renamed into
// place, so readers (and a resumed run after a crash) see either the complete old version or the complete new one.
// Errors name the path and say what to do about full disks, permissions and read-only file systems.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Writes one chunk of the file; call it as many times as needed. */
export type ChunkWriter = (chunk: Uint8Array) => void;

/** File contents: the whole data, or a function that streams it chunk by chunk (for files too big to build). */
export type FileContents = string | Uint8Array | ((write: ChunkWriter) => void);

function tempSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** An Error naming `path`, with advice for the errno codes a user can act on. Keeps the system error as cause. */
export function describeWriteError(path: string, e: unknown, doing = 'write'): Error {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const advice: Record<string, string> = {
    ENOSPC: 'no space left on the device; free some space or write somewhere else',
    EDQUOT: 'disk quota exceeded; free some space or write somewhere else',
    EACCES: 'permission denied; check the permissions of the directory or choose another output path',
    EPERM: 'operation not permitted; check the permissions of the directory or choose another output path',
    EROFS: 'the file system is read-only; choose an output path on a writable disk',
    ENOENT: `the directory ${dirname(path)} does not exist; create it first or fix the path`,
    ENOTDIR: `a component of ${dirname(path)} is not a directory; fix the path`,
    EISDIR: 'the path is a directory; give a file path',
  };
  const detail = (code && advice[code]) ?? (e instanceof Error ? e.message : String(e));
  return new Error(`cannot ${doing} ${path}: ${detail}${code ? ` (${code})` : ''}`, { cause: e });
}

/** Writes all of `bytes` to fd (writeSync may write less than asked, and refuses 2 GiB or more at once). */
function writeAll(fd: number, bytes: Uint8Array): void {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, Math.min(CHUNK, bytes.byteLength - done));
}

/** Flushes a directory's entry table so a rename survives a crash; not every platform allows it, so best effort. */
function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows and some network file systems refuse to open or fsync a directory; the rename is still atomic.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * Writes `path` atomically: to `path.tmp-<pid>-<random>` in the same directory, fsync, then rename over `path`.
 * On any error the temporary file is removed, an existing `path` is left as it was, and the error names `path`.
 */
export function writeFileAtomic(path: string, data: FileContents): void {
  const tmp = `${path}.tmp-${tempSuffix()}`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx');
    if (typeof data === 'function') {
      const handle = fd;
      data((chunk) => writeAll(handle, chunk));
    } else {
      writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) {
      try { closeSync(fd); } catch { /* already failing; the original error matters */ }
    }
    try { unlinkSync(tmp); } catch { /* it may never have been created */ }
    // Errors thrown by a streaming writer's own code (not the file system) pass through unchanged.
    if ((e as NodeJS.ErrnoException).code === undefined) throw e;
    throw describeWriteError(path, e);
  }
  fsyncDir(dirname(path));
}

/** fsyncs every file under dir, so the directory rename below publishes data that is on disk. */
function fsyncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) fsyncTree(p);
    else if (entry.isFile()) {
      const fd = openSync(p, 'r');
      try { fsyncSync(fd); } finally { closeSync(fd); }
    }
  }
  fsyncDir(dir);
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates or replaces the directory `dir` atomically: `fill(tmpDir)` writes the contents into a fresh sibling
 * directory, which is then renamed to `dir`. An existing `dir` is first renamed aside to `<dir>.old-<pid>-<random>`
 * and deleted afterwards, so `dir` is always either complete or absent (a crash between the two renames leaves the
 * previous version in the `.old-` directory). If fill throws, the temporary directory is removed and `dir` is untouched.
 */
export async function writeDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void> | void): Promise<void> {
  const parent = dirname(dir);
  const suffix = tempSuffix();
  const tmpDir = join(parent, `${basename(dir)}.tmp-${suffix}`);
  const oldDir = join(parent, `${basename(dir)}.old-${suffix}`);
  try {
    mkdirSync(parent, { recursive: true });
    mkdirSync(tmpDir);
  } catch (e) {
    throw describeWriteError(dir, e, 'create the directory');
  }
  try {
    await fill(tmpDir);
    fsyncTree(tmpDir);
  } catch (e) {
    rmSync(tmpDir, { recursive: true, force: true });
    throw e;
  }
  const hadOld = exists(dir);
  try {
    if (hadOld) renameSync(dir, oldDir);
  } catch (e) {
    rmSync(tmpDir, { recursive: true, force: true });
    throw describeWriteError(dir, e, 'move aside the existing directory');
  }
  try {
    renameSync(tmpDir, dir);
  } catch (e) {
    if (hadOld) renameSync(oldDir, dir); // put the previous version back
    rmSync(tmpDir, { recursive: true, force: true });
    throw describeWriteError(dir, e, 'move the new directory into place at');
  }
  fsyncDir(parent);
  if (hadOld) rmSync(oldDir, { recursive: true, force: true });
}
