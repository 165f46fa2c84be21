// Live entries per second over a short sliding window, so the figure is
// steady at thousands per second yet drops to 0 soon after the flow stops.

const WINDOW_MS = 3000;

export class RateMeter {
  private buckets: { t: number; n: number }[] = [];

  add(n: number, now = performance.now()): void {
    const last = this.buckets[this.buckets.length - 1];
    // 100 ms buckets keep the window cheap at any rate.
    if (last && now - last.t < 100) last.n += n;
    else this.buckets.push({ t: now, n });
  }

  perSecond(now = performance.now()): number {
    while (this.buckets.length && now - this.buckets[0].t > WINDOW_MS) this.buckets.shift();
    let sum = 0;
    for (const b of this.buckets) sum += b.n;
    return (sum * 1000) / WINDOW_MS;
  }

  reset(): void {
    this.buckets = [];
  }
}
