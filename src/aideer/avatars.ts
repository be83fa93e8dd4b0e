// Avatars (decision A10): any decodable image, fitted within 128×128 (aspect kept, never enlarged),
// stored as WebP named by its SHA-256 under the static folder.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
const SIZE = 128;

export class InvalidImage extends Error {}

export class AvatarStore {
  private readonly dir: string;

  constructor(staticDir: string) {
    this.dir = path.join(staticDir, 'avatars');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  /** Decodes, fits and re-encodes the image; returns its public path (`/static/avatars/<sha256>.webp`). */
  async save(upload: Buffer): Promise<string> {
    let webp: Buffer;
    try {
      webp = await sharp(upload, { failOn: 'truncated', limitInputPixels: 50_000_000 })
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
