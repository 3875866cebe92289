// Where the process is in its life: readiness depends on it, liveness does not.
export type Phase = 'starting' | 'ready' | 'draining';

export class Lifecycle {
  private current: Phase = 'starting';
  readonly startedAt = Date.now();

  get phase(): Phase {
    return this.current;
  }

  /** Called once the application has loaded every plugin and route. */
  markReady(): void {
    if (this.current === 'starting') this.current = 'ready';
  }

  /** Called on SIGTERM: readiness answers 503 from now on, so load balancers stop routing here. */
  startDraining(): void {
    this.current = 'draining';
  }

  uptimeSeconds(): number {
    return Math.round((Date.now() - this.startedAt) / 100) / 10;
  }
}
