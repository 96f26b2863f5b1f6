// Learning-rate schedules with HF Trainer semantics: a linear warm-up from 0 over `warmupSteps`, then constant,
// linear decay to 0, or half-cosine decay to 0 at `totalSteps`. `step` is the number of optimizer steps already taken.

export const schedulerTypes = ['constant', 'linear', 'cosine'] as const;
export type SchedulerType = (typeof schedulerTypes)[number];

export interface ScheduleOptions {
  type: SchedulerType;
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** The learning rate for the optimizer step that follows `step` completed steps (HF's LambdaLR convention). */
export function learningRateAt(step: number, o: ScheduleOptions): number {
  if (step < o.warmupSteps) return (o.baseLr * step) / Math.max(1, o.warmupSteps);
  const decaySteps = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / decaySteps);
  switch (o.type) {
    case 'constant':
      return o.baseLr;
    case 'linear':
      return o.baseLr * Math.max(0, 1 - progress);
    case 'cosine':
      return o.baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    default:
      return o.type satisfies never;
  }
}

/** Warm-up steps from TRL's two options: warmup_steps wins when > 0, else ceil(warmup_ratio · total). */
export function warmupStepsFrom(warmupSteps: number, warmupRatio: number, totalSteps: number): number {
  return warmupSteps > 0 ? warmupSteps : Math.ceil(warmupRatio * totalSteps);
}
