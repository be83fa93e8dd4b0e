// Avatars (decision A10): any decodable image, fitted within 128×128 (aspect kept, never enlarged),
// stored as WebP named by its SHA-256 under the static folder.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type sharpModule from 'sharp';
import { messageOf } from '../../logger.ts';

export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
const SIZE = 128;

export class InvalidImage extends Error {}

const load = createRequire(import.meta.url);
let sharp: typeof sharpModule | undefined;

/**
 * sharp (libvips), loaded by the first upload: loading it (its JS, libc detection, the native
 * library) was about 15% of a cold start, for one operation. Start-up still checks that it is
 * installed (AvatarStore's constructor); should the native part fail to load anyway, the upload
 * fails with this message in the log, not as an invalid image.
 */
function imageLibrary(): typeof sharpModule {
  if (!sharp) {
    try {
      // require() is typed `any`; this is the package the type import above describes.
      sharp = load('sharp') as typeof sharpModule;
    } catch (err) {
      throw new Error(`avatars: the image library (sharp) failed to load: ${messageOf(err)}`, { cause: err });
    }
  }
  return sharp;
}

export class AvatarStore {
  private readonly dir: string;

  constructor(staticDir: string) {
    // Installed (a missing package refuses start-up, as the import did); loaded on first use.
    load.resolve('sharp');
    this.dir = path.join(staticDir, 'avatars');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  /** Decodes, fits and re-encodes the image; returns its public path (`/static/avatars/<sha256>.webp`). */
  async save(upload: Buffer): Promise<string> {
    const fit = imageLibrary();
    let webp: Buffer;
    try {
      webp = await fit(upload, { failOn: 'truncated', limitInputPixels: 50_000_000 })
        .rotate() // honour EXIF orientation before measuring
        .resize(SIZE, SIZE, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 85 })
        .toBuffer();
    } catch {
      throw new InvalidImage();
    }
    const name = `${crypto.createHash('sha256').update(webp).digest('hex')}.webp`;
    const file = path.join(this.dir, name);
    if (!fs.existsSync(file)) await fs.promises.writeFile(file, webp);
    return `/static/avatars/${name}`;
  }

  /** Removes an uploaded avatar file (never the bundled default). */
  async remove(publicPath: string): Promise<void> {
    // Only content-addressed uploads; the bundled default avatar never matches.
    if (!/^\/static\/avatars\/[0-9a-f]{64}\.webp$/.test(publicPath)) return;
    await fs.promises.rm(path.join(this.dir, path.basename(publicPath)), { force: true });
  }
}
