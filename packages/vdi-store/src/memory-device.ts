import { type BlockDevice, checkRange } from './device.js';
import { RingError } from './errors.js';

/** What happens to one sector of an unflushed write when the power goes. */
export type SectorFate = 'apply' | 'drop' | 'garble';

/** Thrown by a MemoryDevice when its crash point is reached: the operation did not happen. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

export const SECTOR = 512;

/**
 * An in-memory block device with a crash model. Writes land in a volatile layer until flush();
 * `crashAfter(n)` makes the n-th next write or flush throw SimulatedCrash (and not happen), and
 * `afterCrash(fate)` builds the image a reboot would see: durable bytes plus each unflushed
 * write applied, dropped or garbled sector by sector, as `fate` decides.
 */
export class MemoryDevice implements BlockDevice {
  readonly size: number;
  private durable: Uint8Array;
  private current: Uint8Array;
  private pending: { offset: number; data: Uint8Array }[] = [];
  private opsLeft: number | null = null;
  /** Count of writes and flushes so far (the persistence points). */
  ops = 0;

  constructor(
    sizeOrImage: number | Uint8Array,
    readonly readOnly = false,
  ) {
    const image = typeof sizeOrImage === 'number' ? new Uint8Array(sizeOrImage) : sizeOrImage;
    this.size = image.length;
    this.durable = image.slice();
    this.current = image.slice();
  }

  /** The n-th next write/flush (1 = the very next) throws SimulatedCrash. */
  crashAfter(n: number | null): void {
    this.opsLeft = n;
  }

  private tick(): void {
    this.ops++;
    if (this.opsLeft !== null) {
      this.opsLeft--;
      if (this.opsLeft <= 0) {
        this.opsLeft = null;
        throw new SimulatedCrash(`simulated power loss at operation ${this.ops}`);
      }
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.current.slice(offset, offset + length);
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this, offset, target.length);
    target.set(this.current.subarray(offset, offset + target.length));
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new RingError('RING_READ_ONLY', 'memory device is read-only');
    checkRange(this, offset, data.length);
    this.tick();
    this.current.set(data, offset);
    this.pending.push({ offset, data: data.slice() });
  }

  async flush(): Promise<void> {
    this.tick();
    this.durable = this.current.slice();
    this.pending = [];
  }

  async close(): Promise<void> {}

  /** Number of unflushed writes (each may be applied, dropped or garbled by a crash). */
  get unflushed(): number {
    return this.pending.length;
  }

  /** The bytes as they are now (what reads return). */
  snapshot(): Uint8Array {
    return this.current.slice();
  }

  /** The image after a power loss now. `fate(write, sector)` decides each unflushed sector. */
  afterCrash(fate: (write: number, sector: number) => SectorFate): Uint8Array {
    const img = this.durable.slice();
    this.pending.forEach((w, wi) => {
      const sectors = Math.ceil(w.data.length / SECTOR);
      for (let s = 0; s < sectors; s++) {
        const from = s * SECTOR;
        const chunk = w.data.subarray(from, Math.min(from + SECTOR, w.data.length));
        const f = fate(wi, s);
        if (f === 'apply') img.set(chunk, w.offset + from);
        else if (f === 'garble') {
          for (let i = 0; i < chunk.length; i++)
            img[w.offset + from + i] = (i * 131 + s * 7 + 0x5a) & 0xff;
        }
      }
    });
    return img;
  }
}
